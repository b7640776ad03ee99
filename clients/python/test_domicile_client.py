"""The reference encoder against the specification's test vectors (clients/test-vectors.json)."""
import base64
import json
import os
import unittest

import domicile_client

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test-vectors.json")


class Vectors(unittest.TestCase):
    def setUp(self):
        with open(VECTORS) as handle:
            self.vectors = json.load(handle)
        self.key = base64.b64decode(self.vectors["brand_key"])
        self.index_key = base64.b64decode(self.vectors["index_key"])

    def test_key_id(self):
        self.assertEqual(domicile_client.key_id(self.key), self.vectors["key_id"])

    def test_each_vector_seals_to_the_expected_envelope_and_opens(self):
        for vector in self.vectors["vectors"]:
            with self.subTest(attribute=vector["attribute"]):
                self.assertEqual(domicile_client.plaintext(vector["value"]).hex(), vector["plaintext_hex"])
                self.assertEqual(domicile_client.associated_data(self.vectors["workspace"], vector["customer_id"],
                                                                 vector["attribute"]).hex(), vector["aad_hex"])
                envelope = domicile_client.seal(self.key, self.vectors["workspace"], vector["customer_id"], vector["attribute"],
                                                vector["value"], index_key=self.index_key if "index" in vector["envelope"] else None,
                                                masked=vector["envelope"].get("masked"),
                                                nonce=base64.b64decode(vector["envelope"]["nonce"]))
                self.assertEqual(envelope, vector["envelope"])
                opened = domicile_client.open_envelope({self.vectors["key_id"]: self.key}, self.vectors["workspace"],
                                                       vector["customer_id"], vector["attribute"], vector["envelope"])
                self.assertEqual(opened, vector["value"])

    def test_an_envelope_moved_to_another_customer_does_not_open(self):
        vector = self.vectors["vectors"][0]
        with self.assertRaises(Exception):
            domicile_client.open_envelope({self.vectors["key_id"]: self.key}, self.vectors["workspace"], "someone-else",
                                          vector["attribute"], vector["envelope"])


if __name__ == "__main__":
    unittest.main()

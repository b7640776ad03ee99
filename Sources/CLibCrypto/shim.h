// OpenSSL's libcrypto (Debian: libssl-dev): the EVP cipher interface, for AES-256-GCM with a key
// schedule computed once per key (see DomicileVault/AESGCM.swift), and OPENSSL_cleanse to wipe
// plaintext buffers.
#include <openssl/evp.h>
#include <openssl/crypto.h>

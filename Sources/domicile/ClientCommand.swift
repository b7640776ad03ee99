import ArgumentParser
import DomicileClient
import DomicileCore
import Foundation

/// `domicile client …`: the brand's side of client mode, run on the brand's systems with the
/// brand's keys (Domicile's nodes never see them).
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Client-held keys: make the brand's keys, encrypt payloads before they are sent, decrypt exports (docs/client-encryption.md).",
        subcommands: [Keygen.self, Encrypt.self, DecryptExport.self, Digest.self])

    /// The brand's schema, as `encrypt` and `digest` need it: the standard attributes, plus
    /// those named non-PII (left in clear) or indexed, with their types.
    struct SchemaOptions: ParsableArguments {
        @Option(name: .customLong("plain"), help: ArgumentHelp("An attribute the workspace marks non-PII: left in clear (repeat).", valueName: "name"))
        var plain: [String] = []
        @Option(name: .customLong("indexed"), help: ArgumentHelp("Another attribute looked up by value: its digest travels with it (repeat).", valueName: "name"))
        var indexed: [String] = []
        @Option(name: .customLong("type"), help: ArgumentHelp(
            "An attribute's type, for validation and its masked form: email, phone, name, address, date, text, number or boolean (repeat).",
            valueName: "name=type"))
        var types: [String] = []

        func schema() throws -> PIISchema {
            var schema = PIISchema()
            for entry in types {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let type = AttributeType(rawValue: parts[1]) else {
                    throw ValidationError("--type takes name=type, the type one of \(AttributeType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let name = try AttributeName(validating: parts[0])
                var definition = schema[name] ?? AttributeDefinition(name: name, type: type)
                definition.type = type
                schema.set(definition)
            }
            for raw in indexed {
                let name = try AttributeName(validating: raw)
                var definition = schema[name] ?? AttributeDefinition(name: name, type: .text)
                definition.indexed = true
                schema.set(definition)
            }
            for raw in plain {
                let name = try AttributeName(validating: raw)
                var definition = schema[name] ?? AttributeDefinition(name: name, type: .text)
                definition.pii = false
                schema.set(definition)
            }
            return schema
        }
    }

    struct KeyOptions: ParsableArguments {
        @Option(help: ArgumentHelp("The brand key file (repeat: the first seals, every one opens).", valueName: "file")) var key: [String] = []
        @Option(help: ArgumentHelp("The brand's index key file.", valueName: "file")) var indexKey: String?

        func keys(needIndex: Bool) throws -> BrandKeys {
            guard !key.isEmpty else { throw ValidationError("--key is required: the brand key file (domicile client keygen makes one)") }
            if needIndex && indexKey == nil { throw ValidationError("--index-key is required: digests of indexed attributes travel with them") }
            return try BrandKeys(encryption: key.map(KeyFile.read), index: indexKey.map(KeyFile.read))
        }
    }

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a brand key and an index key, files readable only by their owner.")
        @Option(help: ArgumentHelp("Folder the two files go in (brand.key, index.key).", valueName: "dir")) var out: String = "."

        func run() async throws {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let brand = try KeyFile.generate(at: out + "/brand.key")
            _ = try KeyFile.generate(at: out + "/index.key")
            print("""
                Brand key \(BrandKeys.keyID(of: brand)) in \(out)/brand.key; index key in \(out)/index.key (both mode 0600).
                Keep them on the brand's side: Domicile never holds them. Losing brand.key loses every value sealed with it.
                """)
        }
    }

    struct Encrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read an ingest payload with values in clear (stdin or --in), validate it, write it with envelopes (stdout or --out).")
        @Option(help: "The client-mode workspace the payload is for (it is bound into each envelope).") var workspace: String
        @OptionGroup var keys: KeyOptions
        @OptionGroup var schema: SchemaOptions
        @Option(name: .customLong("in"), help: ArgumentHelp("Read from this file instead of standard input.", valueName: "file")) var input: String?
        @Option(name: .customLong("out"), help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file")) var output: String?

        func run() async throws {
            let brand = try keys.keys(needIndex: true)
            let payload = ClientPayload(keys: brand, workspace: try WorkspaceID(validating: workspace), schema: try schema.schema())
            let json = try ClientIO.readJSON(input)
            try ClientIO.write(try payload.encrypt(json), to: output)
        }
    }

    struct DecryptExport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decrypt-export",
            abstract: "Read an access or portability export (JSON, stdin or --in) and write it with every envelope opened.")
        @Option(help: "The workspace the export is from.") var workspace: String
        @OptionGroup var keys: KeyOptions
        @Option(name: .customLong("in"), help: ArgumentHelp("Read from this file instead of standard input.", valueName: "file")) var input: String?
        @Option(name: .customLong("out"), help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file")) var output: String?

        func run() async throws {
            let payload = ClientPayload(keys: try keys.keys(needIndex: false), workspace: try WorkspaceID(validating: workspace))
            try ClientIO.write(try payload.decryptExport(try ClientIO.readJSON(input)), to: output)
        }
    }

    struct Digest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the base64 digest to look a customer up by (GET …/customers?attribute=NAME&digest=…); the value is read from stdin.")
        @Option(help: "The indexed attribute, e.g. email or mobile.") var attribute: String
        @Option(help: ArgumentHelp("The brand's index key file.", valueName: "file")) var indexKey: String
        @OptionGroup var schema: SchemaOptions

        func run() async throws {
            let name = try AttributeName(validating: attribute)
            let definition = try schema.schema()[name] ?? AttributeDefinition(name: name, type: .text)
            let raw = (readLine(strippingNewline: true) ?? "")
            let value = try definition.normalize(.string(raw))
            let keys = try BrandKeys(encryption: [KeyFile.read(indexKey)], index: KeyFile.read(indexKey))
            print(Data(try keys.digest(value, attribute: name.rawValue)).base64EncodedString())
        }
    }
}

enum ClientIO {
    static func readJSON(_ path: String?) throws -> JSONValue {
        let data = try path.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } ?? FileHandle.standardInput.readDataToEndOfFile()
        do {
            return try JSONParser.parse(data)
        } catch {
            throw ClientError("the input is not valid JSON: \(error)")
        }
    }

    static func write(_ json: JSONValue, to path: String?) throws {
        var writer = JSONWriter()
        writer.value(json)
        let data = Data(writer.bytes + [0x0A])
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw ClientError("cannot write \(path)")
            }
        } else {
            FileHandle.standardOutput.write(data)
        }
    }
}

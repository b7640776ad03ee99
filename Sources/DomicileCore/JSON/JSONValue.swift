/// Any JSON value, for request bodies whose attributes are open-ended.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON type's name, for error messages that must not echo the value.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .integer, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Strings first: they are by far the most common attribute values.
        if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? container.decode(Int64.self) {
            self = .integer(integer)
        } else if let double = try? container.decode(Double.self) {
            self = .double(double)
        } else if let object = try? container.decode([String: JSONValue].self) {
            self = .object(object)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// The value of one customer attribute: a JSON scalar.
public enum AttributeValue: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case double(Double)
    case bool(Bool)

    public var json: JSONValue {
        switch self {
        case .string(let value): .string(value)
        case .integer(let value): .integer(value)
        case .double(let value): .double(value)
        case .bool(let value): .bool(value)
        }
    }

    /// The type an attribute first seen with this value is given.
    public var inferredType: AttributeType {
        switch self {
        case .string: .text
        case .integer, .double: .number
        case .bool: .boolean
        }
    }

    // MARK: Plaintext encoding (what gets sealed)

    @usableFromInline
    enum Tag: UInt8 { case string = 0x73, integer = 0x69, double = 0x64, bool = 0x62 }

    /// A tagged byte form, so a value decrypts back to the same JSON type.
    public var plaintext: [UInt8] {
        switch self {
        case .string(let value): return [Tag.string.rawValue] + Array(value.utf8)
        case .integer(let value): return [Tag.integer.rawValue] + withUnsafeBytes(of: value.bigEndian, Array.init)
        case .double(let value): return [Tag.double.rawValue] + withUnsafeBytes(of: value.bitPattern.bigEndian, Array.init)
        case .bool(let value): return [Tag.bool.rawValue, value ? 1 : 0]
        }
    }

    /// Inlinable so that the vault's call (with `Data`) is specialised, not run through generic witnesses.
    @inlinable
    public init?(plaintext bytes: some Collection<UInt8>) {
        guard let first = bytes.first, let tag = Tag(rawValue: first) else { return nil }
        let body = bytes.dropFirst()
        switch tag {
        case .string:
            self = .string(String(decoding: body, as: UTF8.self))
        case .integer:
            guard body.count == 8 else { return nil }
            self = .integer(Int64(bitPattern: body.reduce(0) { $0 << 8 | UInt64($1) }))
        case .double:
            guard body.count == 8 else { return nil }
            self = .double(Double(bitPattern: body.reduce(0) { $0 << 8 | UInt64($1) }))
        case .bool:
            guard body.count == 1 else { return nil }
            self = .bool(body.first! != 0)
        }
    }
}

import DomicileCore
import Foundation
import PostgresNIO

/// Reading columns by name, with the column's type spelled once.
extension PostgresRandomAccessRow {
    func text(_ column: String) throws -> String { try self[column].decode(String.self) }
    func optionalText(_ column: String) throws -> String? { try self[column].decode(String?.self) }
    func int(_ column: String) throws -> Int64 { try self[column].decode(Int64.self) }
    func optionalInt(_ column: String) throws -> Int64? { try self[column].decode(Int64?.self) }
    func bool(_ column: String) throws -> Bool { try self[column].decode(Bool.self) }
    func bytes(_ column: String) throws -> [UInt8] { [UInt8](buffer: try self[column].decode(ByteBuffer.self)) }
    func optionalBytes(_ column: String) throws -> [UInt8]? { try self[column].decode(ByteBuffer?.self).map { [UInt8](buffer: $0) } }
    /// A time kept as milliseconds since 1970.
    func date(_ column: String) throws -> Date { Date(millis: try int(column)) }
    func optionalDate(_ column: String) throws -> Date? { try optionalInt(column).map(Date.init(millis:)) }
}

extension Array where Element == UInt8 {
    /// As a `bytea` parameter (a `[UInt8]` alone would be sent as an array of `"char"`).
    var bytea: ByteBuffer { ByteBuffer(bytes: self) }
}

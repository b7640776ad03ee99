import Foundation
import GRDB

extension SQLiteVaultStore {
    public struct BackupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// An online, consistent copy of the database at `path`, through SQLite's backup API from
    /// one read snapshot: writes go on while it is taken and are not in it. Written to a
    /// `.partial` file, fsynced, then renamed, so `path` is never a half copy. The copy holds
    /// what the database holds: ciphertext, wrapped keys, digests, never a root key.
    public func backup(to path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { throw BackupError(description: "\(path) already exists") }
        let partial = path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            let destination = try DatabaseQueue(path: partial)
            try pool.backup(to: destination)
            try destination.close()
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw BackupError(description: "cannot write the backup \(partial)")
        }
        try Self.sync(partial)
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        try Self.sync((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
    }

    /// fsync of a file or a folder (after a rename, so that the new name is durable too).
    public static func sync(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw BackupError(description: "cannot open \(path)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw BackupError(description: "cannot fsync \(path)") }
    }
}

import ArgumentParser
import DomicileCore
import DomicileSQLite
import DomicileVault
import Foundation
import Logging

/// `domicile backup --to FILE`: an online, consistent copy of the embedded database.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the embedded database, consistently, while the server runs (PostgreSQL: use pg_dump, see docs/operations.md).")

    @OptionGroup var node: NodeOptions
    @Option(help: ArgumentHelp("The backup file to write (must not exist).", valueName: "file")) var to: String

    func run() async throws {
        guard node.databaseURL == nil else {
            throw ValidationError("a PostgreSQL database is backed up with pg_dump (docs/operations.md, \"Backups\"); the erasure journal is kept with it")
        }
        guard FileManager.default.fileExists(atPath: node.databasePath) else { throw ValidationError("no database at \(node.databasePath)") }
        let store = try SQLiteVaultStore(path: node.databasePath)
        do { try store.backup(to: to) } catch { throw ValidationError("\(error)") }
        let size = (try? FileManager.default.attributesOfItem(atPath: to)[.size] as? NSNumber)?.intValue ?? 0
        print("""
            Backed up \(node.databasePath) to \(to) (\(size) bytes): ciphertext and wrapped keys only.
            Keep it apart from the root key (or KMS access) and from the erasure journal \(node.erasureJournalPath).
            """)
    }
}

/// `domicile restore --from FILE`: puts a backup in place, then erases again everyone the erasure
/// journal says was erased after the backup's data was written.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into the data folder (the server stopped), then replay the erasures made since.")

    @OptionGroup var node: NodeOptions
    @Option(help: ArgumentHelp("The backup file.", valueName: "file")) var from: String?
    @Option(name: .customLong("replay"), help: ArgumentHelp(
        "More erasure journals to replay (several nodes each keep one); the node's own (--erasure-journal) is always read when it exists.",
        valueName: "file"))
    var journals: [String] = []
    @Flag(help: "Do not copy a backup: only replay the journals into the database as it is (after pg_restore).")
    var replayOnly = false

    func run() async throws {
        let logger = Logger(label: "domicile")
        if replayOnly {
            guard from == nil else { throw ValidationError("--replay-only takes no --from") }
        } else {
            guard let from else { throw ValidationError("--from FILE is required (or --replay-only)") }
            guard node.databaseURL == nil else {
                throw ValidationError("restore a PostgreSQL database with pg_restore, then run `domicile restore --replay-only`")
            }
            try putInPlace(from)
        }
        var entries: [ErasureJournal.Entry] = []
        var read: [String] = []
        for path in [node.erasureJournalPath] + journals where FileManager.default.fileExists(atPath: path) {
            do { entries += try ErasureJournal.read(path: path) } catch { throw ValidationError("\(error)") }
            read.append(path)
        }
        if read.isEmpty && !journals.isEmpty { throw ValidationError("none of the erasure journals exists") }
        let vault = try await node.openVault(logger: logger)
        let erased = try await vault.replayErasures(entries)
        print("""
            \(replayOnly ? "Replayed" : "Restored \(from ?? "") into \(node.databasePath); replayed") \(entries.count) journal entries \
            from \(read.isEmpty ? "no journal" : read.joined(separator: ", ")): \(erased) customers erased again.
            """)
    }

    /// Moves the current database aside (never deleted) and copies the backup in its place.
    func putInPlace(_ backup: String) throws {
        guard let header = FileHandle(forReadingAtPath: backup)?.readData(ofLength: 16), header == Data("SQLite format 3\u{0}".utf8) else {
            throw ValidationError("\(backup) is not an SQLite database")
        }
        let files = FileManager.default
        try files.createDirectory(atPath: node.dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if files.fileExists(atPath: node.databasePath) {
            let aside = (node.dataDir as NSString).appendingPathComponent("before-restore-\(Int(Date().timeIntervalSince1970))")
            try files.createDirectory(atPath: aside, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            for suffix in ["", "-wal", "-shm"] where files.fileExists(atPath: node.databasePath + suffix) {
                try files.moveItem(atPath: node.databasePath + suffix,
                                   toPath: (aside as NSString).appendingPathComponent("domicile.sqlite" + suffix))
            }
            print("The database it replaces is kept in \(aside).")
        }
        try files.copyItem(atPath: backup, toPath: node.databasePath)
        try SQLiteVaultStore.sync(node.databasePath)
        try SQLiteVaultStore.sync(node.dataDir)
    }
}

import Crypto
import DomicileCore
import Foundation
import HummingbirdBcrypt
import NIOPosix

/// Settings for operator accounts.
public struct OperatorPolicy: Sendable {
    /// bcrypt cost; 12 in production, lower only in tests.
    public var bcryptCost: UInt8 = 12
    public var sessionLifetime: Duration = .seconds(8 * 3600)
    /// Consecutive failed logins before the account is locked.
    public var maximumFailedLogins = 5
    public var lockout: Duration = .seconds(15 * 60)
    /// Login attempts one client address may make per `lockout` window, whatever the accounts:
    /// guessing across many accounts from one address is stopped before any bcrypt work.
    public var loginAttemptsPerClient = 30
    public var minimumPasswordLength = 12
    /// Reveals allowed per operator per hour.
    public var revealsPerHour = 60

    public init() {}
}

/// A successful login.
public struct OperatorSession: Sendable {
    /// The bearer token, shown once; only its SHA-256 is stored.
    public let token: String
    public let expiresAt: Date
    public let operatorRecord: OperatorRecord
}

extension Vault {
    static let operatorEmailAttribute = AttributeName(trusted: "_operator_email")

    /// Creates an operator. Without a password one is generated.
    /// - Returns: the record and the password (to print once).
    public func createOperator(workspace: WorkspaceID, email rawEmail: String, role: Role, viewPII: Bool,
                               password: String? = nil) async throws -> (OperatorRecord, password: String) {
        guard try await store.workspace(workspace) != nil else { throw StoreError.notFound("workspace \(workspace)") }
        let email = try EmailAddress(validating: rawEmail)
        let password = password ?? Self.generatePassword()
        guard password.count >= operatorPolicy.minimumPasswordLength else {
            throw Failure(.attribute, attribute: "password", "passwords need at least \(operatorPolicy.minimumPasswordLength) characters")
        }
        let keys = try await keyring.keys(for: workspace)
        let id = RandomIdentifier.uuid()
        let cost = operatorPolicy.bcryptCost
        let hash = try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
        let record = OperatorRecord(
            id: id, workspaceID: workspace, emailDigest: operatorEmailDigest(email, keys: keys),
            sealedEmail: try keys.sealSecret(email.normalized, context: "operator:\(id)", attribute: Self.operatorEmailAttribute),
            role: role, viewPII: viewPII, passwordHash: hash)
        try await store.saveOperator(record)
        try await audit([AuditDraft(actor: .commandLine, action: .keyChange, attributes: ["operator:\(id)"])], workspace: workspace)
        return (record, password)
    }

    /// The operator's e-mail address, opened (for the operator's own listing by an administrator).
    public func operatorEmail(_ record: OperatorRecord) async throws -> String {
        let keys = try await keyring.keys(for: record.workspaceID)
        return try keys.openSecret(record.sealedEmail, context: "operator:\(record.id)", attribute: Self.operatorEmailAttribute)
    }

    func operatorEmailDigest(_ email: EmailAddress, keys: WorkspaceKeys) -> [UInt8] {
        keys.firstVersionIndex.digest(.string(email.normalized), attribute: Self.operatorEmailAttribute)
    }

    /// Checks an operator's password and opens a session.
    ///
    /// Unknown e-mail, wrong password and a locked account get the same refusal, in about the same
    /// time, so none of them can be told apart from outside. After `maximumFailedLogins` failures
    /// in a row the account is locked for `lockout`.
    /// Each client address may try `loginAttemptsPerClient` times per lockout window; past that
    /// it gets `429` before any account is looked up.
    public func login(workspace rawWorkspace: String, email rawEmail: String, password: String, client: String?,
                      requestID: String? = nil) async throws -> OperatorSession {
        if let client, !loginLimiter.admit(client, limit: operatorPolicy.loginAttemptsPerClient).allowed {
            throw Failure(.rateLimited, "too many login attempts from this address; retry in \(operatorPolicy.lockout.components.seconds / 60) minutes")
        }
        let refusal = Failure(.unauthorized, "invalid credentials, or the account is locked after repeated failures")
        let cost = operatorPolicy.bcryptCost
        guard let workspace = try? WorkspaceID(validating: rawWorkspace), try await store.workspace(workspace) != nil,
              let email = try? EmailAddress(validating: rawEmail),
              var record = try await store.operatorRecord(emailDigest: operatorEmailDigest(email, keys: keyring.keys(for: workspace)),
                                                          workspace: workspace)
        else {
            // Spend the time a real check would, so unknown accounts are not faster to refuse.
            let dummy = Self.dummyHash(cost: cost)
            _ = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: dummy) }
            throw refusal
        }
        let now = Date()
        let hash = record.passwordHash
        let matches = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
        if let lockedUntil = record.lockedUntil, lockedUntil > now {
            try await audit([AuditDraft(actor: record.actor, action: .loginFailed, requestID: requestID)], workspace: workspace)
            throw refusal
        }
        guard matches else {
            // Counted in the store in one step: parallel guesses each count.
            try await store.recordFailedLogin(operatorID: record.id, maximum: operatorPolicy.maximumFailedLogins, now: now,
                                              lockUntil: now.addingTimeInterval(Double(operatorPolicy.lockout.components.seconds)))
            try await audit([AuditDraft(actor: record.actor, action: .loginFailed, requestID: requestID)], workspace: workspace)
            throw refusal
        }
        // The row was read before the password check; failures counted meanwhile may have locked it.
        guard try await store.recordSuccessfulLogin(operatorID: record.id, now: now) else {
            try await audit([AuditDraft(actor: record.actor, action: .loginFailed, requestID: requestID)], workspace: workspace)
            throw refusal
        }
        record.failedAttempts = 0
        record.lockedUntil = nil
        let token = "ds_" + Self.randomToken()
        let expiresAt = now.addingTimeInterval(Double(operatorPolicy.sessionLifetime.components.seconds))
        try await store.saveSession(SessionRecord(tokenHash: DataAPIKey.hash(token), operatorID: record.id,
                                                  workspaceID: workspace, createdAt: now, expiresAt: expiresAt))
        try await audit([AuditDraft(actor: record.actor, action: .login, requestID: requestID)], workspace: workspace)
        return OperatorSession(token: token, expiresAt: expiresAt, operatorRecord: record)
    }

    /// The operator behind a bearer token, read fresh so role changes apply at once.
    public func authenticateSession(token: String) async throws -> OperatorRecord? {
        guard token.hasPrefix("ds_"), let session = try await store.session(tokenHash: DataAPIKey.hash(token)),
              session.expiresAt > Date(),
              let record = try await store.operatorRecord(id: session.operatorID)
        else { return nil }
        if let lockedUntil = record.lockedUntil, lockedUntil > Date() { return nil }
        return record
    }

    public func logout(token: String) async throws {
        try await store.deleteSession(tokenHash: DataAPIKey.hash(token))
    }

    /// Clears a lockout.
    public func unlockOperator(id: String) async throws {
        guard var record = try await store.operatorRecord(id: id) else { throw StoreError.notFound("operator \(id)") }
        record.failedAttempts = 0
        record.lockedUntil = nil
        try await store.saveOperator(record)
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func generatePassword() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet.randomElement(using: &generator)! })
    }

    private static let dummyHashes = DummyHashes()

    static func dummyHash(cost: UInt8) -> String { dummyHashes.hash(cost: cost) }
}

/// A bcrypt hash per cost, made once, to compare against when the account does not exist.
final class DummyHashes: Sendable {
    private let hashes = Mutex<[UInt8: String]>([:])
    func hash(cost: UInt8) -> String {
        if let hash = hashes.withLock({ $0[cost] }) { return hash }
        let hash = Bcrypt.hash(Vault.randomToken(), cost: cost)
        hashes.withLock { $0[cost] = hash }
        return hash
    }
}

import Synchronization

import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One open, greeted, (optionally) encrypted and authenticated SMTP session that sends any
/// number of messages, one transaction after another.
///
/// Get one from `SMTPClient.connect()`, call `send(_:)` as often as needed and `close()` at the
/// end. Calls are serialised: a second `send` waits for the first. Each transaction after the
/// first starts with RSET. When the server advertises PIPELINING, RSET, MAIL FROM and every
/// RCPT TO go in one round trip.
///
/// A send that fails with a server reply (`SMTPError.Kind.rejected`, other than 421) leaves the
/// connection usable for the next message. Any other failure closes it: check `isOpen` before
/// returning a connection to a pool.
public actor SMTPConnection {
    /// What the server advertised in its last EHLO reply (after STARTTLS, when used).
    public nonisolated let capabilities: SMTPCapabilities
    /// Whether the session is encrypted (implicit TLS or STARTTLS).
    public nonisolated let isEncrypted: Bool

    private let dialogue: SMTPDialogue
    private let timeouts: SMTPConfiguration.Timeouts
    private var isClosed = false
    private var transactions = 0
    private var isBusy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private init(dialogue: SMTPDialogue, capabilities: SMTPCapabilities, isEncrypted: Bool, timeouts: SMTPConfiguration.Timeouts) {
        self.dialogue = dialogue
        self.capabilities = capabilities
        self.isEncrypted = isEncrypted
        self.timeouts = timeouts
    }

    deinit {
        dialogue.channel.close(promise: nil)
    }

    /// Whether another message can be sent on this connection.
    public var isOpen: Bool { !isClosed && dialogue.channel.isActive }

    /// Sends one message: RSET (after the first), MAIL FROM, RCPT TO for each recipient, DATA and
    /// the dot-stuffed content.
    ///
    /// All or nothing: if the server refuses any recipient, the transaction is abandoned before
    /// DATA, nobody receives the message, and the error's `recipientIndex` says which one.
    public func send(_ message: EmailMessage) async throws(SMTPError) -> SMTPReceipt {
        await acquire()
        defer { release() }
        guard !isClosed else { throw SMTPError(.connectionClosed, stage: .sender, isTransient: true) }
        let channel = dialogue.channel
        let result = await withTaskCancellationHandler {
            await transaction(message)
        } onCancel: {
            channel.close(promise: nil)
        }
        if case .failure(let error) = result, !error.leavesConnectionUsable {
            isClosed = true
            channel.close(promise: nil)
            if Task.isCancelled { throw SMTPError(.cancelled, stage: error.stage, isTransient: true) }
        }
        return try result.get()
    }

    /// Says QUIT and closes. Waits for a send in progress; never throws.
    public func close() async {
        await acquire()
        defer { release() }
        guard !isClosed else { return }
        isClosed = true
        _ = try? await dialogue.exchange(line: "QUIT", timeout: .seconds(5))
        try? await dialogue.channel.close()
    }

    // MARK: The transaction

    private func transaction(_ message: EmailMessage) async -> Result<SMTPReceipt, SMTPError> {
        let command = TimeAmount(timeouts.command)
        let content = MIMEEncoding.dotStuffed(message.rendered()) + Array(".\r\n".utf8)
        let sender = message.envelopeSender ?? message.from.address
        var mail = "MAIL FROM:<\(sender.normalized)>"
        if capabilities.size { mail += " SIZE=\(content.count)" }

        var steps: [(line: String, stage: SMTPError.Stage, recipient: Int?)] = []
        if transactions > 0 { steps.append(("RSET", .reset, nil)) }
        steps.append((mail, .sender, nil))
        for (index, recipient) in message.recipients.enumerated() {
            steps.append(("RCPT TO:<\(recipient.normalized)>", .recipient, index))
        }
        transactions += 1

        do throws(SMTPError) {
            if capabilities.pipelining {
                // Every reply is read before any verdict, so none is left to answer a later command.
                let replies = await dialogue.exchange(lines: steps.map(\.line), timeout: command)
                // The first problem in command order is the one that describes the message; a
                // broken channel after it still shows in `isOpen`.
                for (result, step) in zip(replies, steps) {
                    let reply = try result.mapError { SMTPError($0, stage: step.stage) }.get()
                    guard reply.isPositiveCompletion else {
                        throw SMTPError(reply: reply, stage: step.stage, recipientIndex: step.recipient)
                    }
                }
            } else {
                for step in steps {
                    let reply = try await exchange(step.line, stage: step.stage)
                    guard reply.isPositiveCompletion else {
                        throw SMTPError(reply: reply, stage: step.stage, recipientIndex: step.recipient)
                    }
                }
            }
            let data = try await exchange("DATA", stage: .data)
            guard data.code == 354 else { throw SMTPError(reply: data, stage: .data) }
            let buffer = dialogue.channel.allocator.buffer(bytes: content)
            let accepted: SMTPReply
            do throws(SMTPChannelFailure) {
                accepted = try await dialogue.exchange(bytes: buffer, timeout: TimeAmount(timeouts.dataTermination))
            } catch {
                throw SMTPError(error, stage: .content)
            }
            guard accepted.isPositiveCompletion else { throw SMTPError(reply: accepted, stage: .content) }
            return .success(SMTPReceipt(
                messageID: message.messageID, recipientCount: message.to.count,
                replyCode: accepted.code, enhancedStatus: accepted.enhancedStatus, serverReply: accepted.text
            ))
        } catch {
            return .failure(error)
        }
    }

    private func exchange(_ line: String, stage: SMTPError.Stage) async throws(SMTPError) -> SMTPReply {
        do {
            return try await dialogue.exchange(line: line, timeout: TimeAmount(timeouts.command))
        } catch {
            throw SMTPError(error, stage: stage)
        }
    }

    // MARK: One transaction at a time

    private func acquire() async {
        if isBusy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            isBusy = true
        }
    }

    private func release() {
        if waiters.isEmpty {
            isBusy = false
        } else {
            waiters.removeFirst().resume()  // hands the turn over; isBusy stays true
        }
    }
}

// MARK: - Opening a session

extension SMTPConnection {
    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS and authenticates, as the
    /// configuration asks.
    static func open(
        configuration: SMTPConfiguration, sslContext: NIOSSLContext?, group: any EventLoopGroup
    ) async throws(SMTPError) -> SMTPConnection {
        let implicitTLS = configuration.tlsMode == .implicit
        let serverName = configuration.effectiveTLSServerName
        let failures = SMTPChannelFailureRecord()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(configuration.timeouts.connect))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if implicitTLS, let sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try pipeline.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    try pipeline.addHandler(SMTPChannelHandler(record: failures))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: configuration.host, port: configuration.port).get()
        } catch ChannelError.connectTimeout {
            throw SMTPError(.timedOut, stage: .connect, isTransient: true)
        } catch {
            throw SMTPError(.connectionFailed, stage: .connect, isTransient: true, underlying: error)
        }
        let dialogue = SMTPDialogue(channel: channel, failures: failures)
        let result = await withTaskCancellationHandler {
            await handshake(dialogue, configuration: configuration, sslContext: sslContext, serverName: serverName)
        } onCancel: {
            channel.close(promise: nil)
        }
        switch result {
        case .success(let (capabilities, isEncrypted)):
            return SMTPConnection(dialogue: dialogue, capabilities: capabilities, isEncrypted: isEncrypted, timeouts: configuration.timeouts)
        case .failure(let error):
            if error.leavesConnectionUsable {
                // Refused by a reply: leave politely.
                _ = try? await dialogue.exchange(line: "QUIT", timeout: .seconds(5))
            }
            channel.close(promise: nil)
            if Task.isCancelled { throw SMTPError(.cancelled, stage: error.stage, isTransient: true) }
            throw error
        }
    }

    private static func handshake(
        _ dialogue: SMTPDialogue, configuration: SMTPConfiguration, sslContext: NIOSSLContext?, serverName: String?
    ) async -> Result<(SMTPCapabilities, Bool), SMTPError> {
        let timeout = TimeAmount(configuration.timeouts.command)
        func exchange(_ line: String?, stage: SMTPError.Stage) async throws(SMTPError) -> SMTPReply {
            do {
                return try await dialogue.exchange(line: line, timeout: timeout)
            } catch {
                throw SMTPError(error, stage: stage)
            }
        }
        func hello() async throws(SMTPError) -> SMTPCapabilities {
            let reply = try await exchange("EHLO \(configuration.heloName)", stage: .hello)
            if reply.code == 250 { return SMTPCapabilities(ehlo: reply) }
            // An old server that knows only HELO: fine when nothing needs an extension.
            let canFallBack = configuration.credentials == nil && configuration.tlsMode != .startTLS
            guard (500...504).contains(reply.code), canFallBack else { throw SMTPError(reply: reply, stage: .hello) }
            let helo = try await exchange("HELO \(configuration.heloName)", stage: .hello)
            guard helo.code == 250 else { throw SMTPError(reply: helo, stage: .hello) }
            return SMTPCapabilities()
        }

        do throws(SMTPError) {
            let greeting = try await exchange(nil, stage: .greeting)
            guard greeting.code == 220 else { throw SMTPError(reply: greeting, stage: .greeting) }
            var encrypted = configuration.tlsMode == .implicit
            var capabilities = try await hello()

            let wantsSTARTTLS = configuration.tlsMode == .startTLS || configuration.tlsMode == .startTLSIfAvailable
            if wantsSTARTTLS, let sslContext {
                if capabilities.startTLS {
                    let reply = try await exchange("STARTTLS", stage: .startTLS)
                    guard reply.code == 220 else { throw SMTPError(reply: reply, stage: .startTLS) }
                    try await dialogue.startTLS(context: sslContext, serverName: serverName)
                    encrypted = true
                    // RFC 3207 §4.2: forget what was said in clear and ask again.
                    do throws(SMTPError) {
                        capabilities = try await hello()
                    } catch where error.kind == .tlsFailed {
                        throw SMTPError(.tlsFailed, stage: .startTLS, isTransient: true, underlying: error)
                    }
                } else if configuration.tlsMode == .startTLS {
                    throw SMTPError(.tlsUnavailable, stage: .startTLS, isTransient: true)
                }
            }

            if let credentials = configuration.credentials {
                guard encrypted || configuration.allowsAuthenticationWithoutTLS else {
                    throw SMTPError(.tlsUnavailable, stage: .authentication, isTransient: true)
                }
                guard let mechanism = credentials.mechanisms.first(where: { capabilities.authenticationMechanisms.contains($0.rawValue) }) else {
                    throw SMTPError(.authenticationUnavailable, stage: .authentication, isTransient: false)
                }
                try await authenticate(credentials, mechanism: mechanism, exchange: exchange)
            }
            return .success((capabilities, encrypted))
        } catch {
            return .failure(error)
        }
    }

    /// RFC 4954 with PLAIN (RFC 4616) or LOGIN. Success is 235; 535 means wrong credentials.
    private static func authenticate(
        _ credentials: SMTPConfiguration.Credentials, mechanism: SMTPConfiguration.AuthenticationMechanism,
        exchange: (String?, SMTPError.Stage) async throws(SMTPError) -> SMTPReply
    ) async throws(SMTPError) {
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let final: SMTPReply
        switch mechanism {
        case .plain:
            final = try await exchange("AUTH PLAIN " + base64("\u{0}\(credentials.username)\u{0}\(credentials.password)"), .authentication)
        case .login:
            let start = try await exchange("AUTH LOGIN", .authentication)
            guard start.code == 334 else { throw SMTPError(reply: start, stage: .authentication) }
            let user = try await exchange(base64(credentials.username), .authentication)
            guard user.code == 334 else { throw SMTPError(reply: user, stage: .authentication) }
            final = try await exchange(base64(credentials.password), .authentication)
        }
        guard final.code == 235 else { throw SMTPError(reply: final, stage: .authentication) }
    }
}

// MARK: - The channel, as async calls

/// Writes requests into the channel and awaits their replies.
struct SMTPDialogue: Sendable {
    let channel: any Channel
    let failures: SMTPChannelFailureRecord

    /// Sends one command line (CRLF added), or nothing when nil, and awaits its reply.
    func exchange(line: String?, timeout: TimeAmount) async throws(SMTPChannelFailure) -> SMTPReply {
        try await exchange(bytes: line.map { channel.allocator.buffer(string: $0 + "\r\n") }, timeout: timeout)
    }

    /// Sends raw bytes (the message content) and awaits the reply.
    func exchange(bytes: ByteBuffer?, timeout: TimeAmount) async throws(SMTPChannelFailure) -> SMTPReply {
        let promise = send(bytes, timeout: timeout)
        channel.flush()
        return try await Self.reply(promise)
    }

    /// Sends several command lines with one flush (RFC 2920 pipelining) and returns every reply,
    /// in order.
    func exchange(lines: [String], timeout: TimeAmount) async -> [Result<SMTPReply, SMTPChannelFailure>] {
        let promises = lines.map { send(channel.allocator.buffer(string: $0 + "\r\n"), timeout: timeout) }
        channel.flush()
        var replies: [Result<SMTPReply, SMTPChannelFailure>] = []
        for promise in promises {
            do throws(SMTPChannelFailure) {
                replies.append(.success(try await Self.reply(promise)))
            } catch {
                replies.append(.failure(error))
            }
        }
        return replies
    }

    /// Puts TLS under the session after the server's 220 to STARTTLS. The handshake runs before
    /// the next command goes out; its failure fails that command's reply.
    func startTLS(context: NIOSSLContext, serverName: String?) async throws(SMTPError) {
        let channel = self.channel
        do {
            try await channel.eventLoop.submit {
                let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
            }.get()
        } catch {
            throw SMTPError(.tlsFailed, stage: .startTLS, isTransient: true, underlying: error)
        }
    }

    private func send(_ bytes: ByteBuffer?, timeout: TimeAmount) -> EventLoopPromise<SMTPReply> {
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        // A write that never reaches the handler (closed channel) must still fail the reply.
        let failures = self.failures
        channel.write(SMTPRequest(bytes: bytes, timeout: timeout, reply: promise)).whenFailure { error in
            promise.fail(error as? SMTPChannelFailure ?? failures.failure ?? .closed)
        }
        return promise
    }

    private static func reply(_ promise: EventLoopPromise<SMTPReply>) async throws(SMTPChannelFailure) -> SMTPReply {
        do {
            return try await promise.futureResult.get()
        } catch let failure as SMTPChannelFailure {
            throw failure
        } catch {
            throw .io(error)
        }
    }
}

extension SMTPError {
    /// A channel-level failure at a stage of the dialogue; all are worth retrying.
    init(_ failure: SMTPChannelFailure, stage: Stage) {
        switch failure {
        case .closed: self.init(.connectionClosed, stage: stage, isTransient: true)
        case .timedOut: self.init(.timedOut, stage: stage, isTransient: true)
        case .tls(let error): self.init(.tlsFailed, stage: stage, isTransient: true, underlying: error)
        case .io(let error): self.init(.connectionClosed, stage: stage, isTransient: true, underlying: error)
        case .malformedReply(let error): self.init(.protocolViolation, stage: stage, isTransient: true, underlying: error)
        }
    }
}

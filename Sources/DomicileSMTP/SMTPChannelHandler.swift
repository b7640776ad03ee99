import NIOCore
import NIOSSL
import Synchronization

/// One command on its way to the server, and the promise of its reply.
struct SMTPRequest: Sendable {
    /// The command line(s) to send; nil to wait for a reply without sending (the greeting).
    var bytes: ByteBuffer?
    var timeout: TimeAmount
    var reply: EventLoopPromise<SMTPReply>
}

/// Why the channel could not deliver a reply; `SMTPConnection` turns it into an `SMTPError`
/// for the stage it was in.
enum SMTPChannelFailure: Error, Sendable {
    case closed
    case timedOut
    case tls(any Error)
    case io(any Error)
    case malformedReply(any Error)
}

/// The first failure of a channel, readable from any thread: a request written after the channel
/// closed never reaches the handler, and its reply should still fail for the real reason (say, a
/// TLS handshake that failed) rather than a bare "closed".
final class SMTPChannelFailureRecord: Sendable {
    private let first = Mutex<SMTPChannelFailure?>(nil)

    func record(_ failure: SMTPChannelFailure) {
        first.withLock { if $0 == nil { $0 = failure } }
    }

    var failure: SMTPChannelFailure? { first.withLock { $0 } }
}

/// Matches replies to requests in order, so commands can be pipelined (RFC 2920), and times out
/// the reply that is awaited. A failure fails every outstanding request and closes the channel.
final class SMTPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = SMTPReply
    typealias OutboundIn = SMTPRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var reply: EventLoopPromise<SMTPReply>
        var timeout: TimeAmount
    }

    private var pending = CircularBuffer<Pending>()
    private var timer: Scheduled<Void>?
    /// A reply that came before anyone asked for it: the greeting can beat the first request.
    private var early: SMTPReply?
    private var hasHadRequest = false
    private var failure: SMTPChannelFailure?
    private let record: SMTPChannelFailureRecord

    init(record: SMTPChannelFailureRecord) {
        self.record = record
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.reply.fail(failure)
            promise?.fail(failure)
            return
        }
        hasHadRequest = true
        if request.bytes == nil, let early {
            self.early = nil
            request.reply.succeed(early)
            promise?.succeed(())
            return
        }
        pending.append(Pending(reply: request.reply, timeout: request.timeout))
        if pending.count == 1 { armTimer(context: context) }
        if let bytes = request.bytes {
            context.write(wrapOutboundOut(bytes), promise: promise)
        } else {
            promise?.succeed(())
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let head = pending.popFirst() else {
            if !hasHadRequest && early == nil {
                early = reply
            } else {
                // Unasked-for: typically 421 before the server drops an idle connection.
                fail(.closed, context: context)
            }
            return
        }
        timer?.cancel()
        timer = nil
        if !pending.isEmpty { armTimer(context: context) }
        head.reply.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure: SMTPChannelFailure
        switch error {
        case is NIOSSLError, is NIOSSLExtraError, is BoringSSLError: failure = .tls(error)
        case is SMTPReplyParser.Malformed: failure = .malformedReply(error)
        default: failure = .io(error)
        }
        fail(failure, context: context)
    }

    private func fail(_ failure: SMTPChannelFailure, context: ChannelHandlerContext) {
        failAll(failure)
        context.close(promise: nil)
    }

    private func failAll(_ failure: SMTPChannelFailure) {
        if self.failure == nil {
            self.failure = failure
            record.record(failure)
        }
        timer?.cancel()
        timer = nil
        while let next = pending.popFirst() {
            next.reply.fail(self.failure ?? failure)
        }
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard let head = pending.first else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: head.timeout) { [self] in
            self.fail(.timedOut, context: context)
        }
    }
}

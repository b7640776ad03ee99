import Foundation
import Testing

/// Faults on the real executable under load: SIGKILL mid-flight, a provider that fails for a
/// minute, a full disk (FaultDrillTests+DiskFull.swift).
@Suite("Fault drills on the real server", .serialized)
struct FaultDrillTests {
    /// One request of a drill's load and what became of it.
    struct Sent: Sendable {
        /// The ids of the request's valid elements (customers or messages).
        var ids: [String]
        /// The id of the one element the server must refuse, if the request has one.
        var refusedID: String?
        /// nil: no answer before the kill.
        var status: Int?
        /// The indexes of the elements refused (ingest).
        var refusedIndexes: [Int] = []
        /// The ids of the messages accepted (send).
        var accepted: Set<String> = []
    }

    /// Runs `load` in `clients` concurrent loops, SIGKILLs the server after `duration`, and
    /// returns every request the loops made. A loop ends at its first request without an answer.
    static func loadThenKill(_ server: ServerProcess, clients: Int, duration: Duration,
                             _ load: @escaping @Sendable (_ client: Int, _ number: Int) async throws -> Sent) async throws -> [Sent] {
        try await withThrowingTaskGroup(of: [Sent].self) { group in
            for client in 0..<clients {
                group.addTask {
                    var sent: [Sent] = []
                    for number in 0... {
                        let request = try await load(client, number)
                        sent.append(request)
                        if request.status == nil { break }
                    }
                    return sent
                }
            }
            try await Task.sleep(for: duration)
            server.kill()
            var all: [Sent] = []
            for try await part in group { all += part }
            return all
        }
    }

    static func email(_ id: String, _ token: String) -> String { "\(token).\(id)@drill.example.com" }

    @Test func sigkillDuringABulkImportLosesNoAcknowledgedElementAndHalfWritesNoRequest() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let server = try await ServerProcess(dataDir: dataDir)
        let token = UUID().uuidString.prefix(8).lowercased()
        let requests = try await Self.loadThenKill(server, clients: 8, duration: .seconds(2)) { client, number in
            var sent = Sent(ids: (0..<50).map { "b\(client)-\(number)-\($0)" })
            var elements = sent.ids.map { id in
                #"{"type":"customer","customer_id":"\#(id)","attributes":{"email":"\#(Self.email(id, token))","first_name":"Dora"}}"#
            }
            // Every other request carries an element the server refuses: it answers 207.
            if number % 2 == 1 {
                sent.refusedID = "bad-\(client)-\(number)"
                elements.append(#"{"type":"customer","customer_id":"bad-\#(client)-\#(number)","attributes":{"email":"not an address"}}"#)
            }
            do {
                let answer = try await server.call("POST", "/v1/transition/acme", key: key,
                                                   json: #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#)
                sent.status = answer.status
                sent.refusedIndexes = (try? answer.decode(Drill.IngestAnswer.self))?.errors?.compactMap(\.index) ?? []
            } catch {}
            return sent
        }
        let answered = requests.filter { $0.status != nil }, unanswered = requests.filter { $0.status == nil }
        #expect(answered.count >= 8, "too little load before the kill")
        for request in answered {
            if let refused = request.refusedID {
                #expect(request.status == 207 && request.refusedIndexes == [request.ids.count], "\(refused): \(request)")
            } else {
                #expect(request.status == 200, "\(request)")
            }
        }

        let restarted = try await ServerProcess(dataDir: dataDir)
        defer { restarted.stop() }
        /// Whether the customer reads back masked and is found by its e-mail (both, or neither).
        @Sendable func presence(_ id: String) async throws -> (read: Bool, found: Bool) {
            let read = try await restarted.call("GET", "/v1/workspaces/acme/customers/\(id)", key: key)
            #expect(read.status == 200 || read.status == 404, "\(id): \(read.status) \(read.text)")
            let email = Self.email(id, token).replacingOccurrences(of: "@", with: "%40")
            let lookup = try await restarted.call("GET", "/v1/workspaces/acme/customers?email=\(email)", key: key)
            let found = try lookup.decode(Drill.CustomerList.self).customers.map(\.customerID) == [id]
            return (read.status == 200, found)
        }
        let acknowledged = answered.flatMap(\.ids)
        let lost = try await Drill.concurrentMap(acknowledged) { id in try await presence(id) == (true, true) ? nil : id }.compactMap { $0 }
        #expect(lost.isEmpty, "\(lost.count) of \(acknowledged.count) acknowledged customers lost or unfindable: \(lost.prefix(10))")

        var wholly = (present: 0, absent: 0)
        for request in unanswered {
            let found = try await Drill.concurrentMap(request.ids) { id in try await presence(id) }
            if found.allSatisfy({ $0 == (true, true) }) { wholly.present += 1 } else if found.allSatisfy({ $0 == (false, false) }) {
                wholly.absent += 1
            } else {
                Issue.record("an unanswered request was half-written: \(found.filter { $0.read }.count) of \(request.ids.count) present")
            }
        }
        let refused = requests.compactMap(\.refusedID)
        let written = try await Drill.concurrentMap(refused) { id in
            try await restarted.call("GET", "/v1/workspaces/acme/customers/\(id)", key: key).status
        }
        #expect(written.allSatisfy { $0 == 404 }, "a refused element was written")
        print("""
            bulk import drill: \(answered.count) requests answered (\(acknowledged.count) customers, \(lost.count) lost), \
            \(unanswered.count) unanswered at the kill (\(wholly.present) wholly present, \(wholly.absent) wholly absent), \
            \(refused.count) refused elements, \(written.filter { $0 != 404 }.count) of them written
            """)
    }

    /// The messages the outbox had claimed (`sending`) when the server died, read from a copy of
    /// the database files, so that the restart finds them exactly as the kill left them.
    static func sendingAtKill(_ dataDir: String) throws -> Set<String> {
        let copy = temporaryDataDir()
        for name in ["domicile.sqlite", "domicile.sqlite-wal"] {
            let source = (dataDir as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: source) {
                try FileManager.default.copyItem(atPath: source, toPath: (copy as NSString).appendingPathComponent(name))
            }
        }
        let (status, output) = try Drill.run(["/usr/bin/env", "sqlite3", (copy as NSString).appendingPathComponent("domicile.sqlite"),
                                              "SELECT message_id FROM messages WHERE status = 'sending';"])
        guard status == 0 else { throw ServerProcess.ProcessFailure(message: "sqlite3: \(output)") }
        return Set(output.split(separator: "\n").map(String.init))
    }

    /// Customers `r-0` … with a mobile number each, for the sending drills.
    static func ingestRecipients(_ count: Int, server: ServerProcess, key: String) async throws {
        let elements = (0..<count).map { i in
            #"{"type":"customer","customer_id":"r-\#(i)","attributes":{"mobile":"+9715011\#(String(format: "%05d", i))"}}"#
        }
        let answer = try await server.call("POST", "/v1/transition/acme", key: key,
                                           json: #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#)
        try #require(answer.status == 200, "\(answer.text)")
    }

    static func messages(_ ids: [String], recipients: Int) -> [String] {
        ids.enumerated().map { i, id in
            #"{"message_id":"\#(id)","customer_id":"r-\#(i % recipients)","channel":"sms","content":{"text":"Your code is {{code}}"},"data":{"code":"\#(i)"}}"#
        }
    }

    /// Polls the messages' statuses until each is final (or absent), or the deadline passes.
    static func finalStatuses(_ ids: [String], server: ServerProcess, key: (id: String, secret: String),
                              until deadline: ContinuousClock.Instant) async throws -> [String: String?] {
        var final: [String: String?] = [:]
        var pending = ids
        while !pending.isEmpty && ContinuousClock.now < deadline {
            let statuses = try await Drill.concurrentMap(pending) { id in (id, try await server.messageStatus(id, key: key)?.status) }
            for (id, status) in statuses where !["queued", "sending"].contains(status) { final[id] = .some(status) }
            pending = pending.filter { final[$0] == nil }
            if !pending.isEmpty { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(pending.isEmpty, "\(pending.count) messages still pending at the deadline: \(pending.prefix(10))")
        return final
    }

    @Test func sigkillDuringSendingDeliversEveryAcceptedMessageAndRepeatsOnlyThoseInFlight() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let sendKey = try Drill.sendKey("acme", dataDir: dataDir)
        let ssp = RecordingSSP()
        try await ssp.serve(workspaceIn: dataDir) {
            let server = try await ServerProcess(dataDir: dataDir)
            try await Self.ingestRecipients(100, server: server, key: key)
            let batches = try await Self.loadThenKill(server, clients: 4, duration: .milliseconds(2500)) { client, number in
                var sent = Sent(ids: (0..<25).map { "s\(client)-\(number)-\($0)" }, refusedID: "ghost-\(client)-\(number)")
                let ghost = #"{"message_id":"ghost-\#(client)-\#(number)","customer_id":"nobody","channel":"sms","content":{"text":"x"}}"#
                do {
                    let answer = try await server.signed("POST", "/v1/workspaces/acme/messages", key: sendKey,
                                                         body: #"{"messages":[\#((Self.messages(sent.ids, recipients: 100) + [ghost]).joined(separator: ","))]}"#)
                    sent.status = answer.status
                    sent.accepted = Set(try answer.decode(Drill.SendAnswer.self).results.filter(\.accepted).compactMap(\.messageID))
                } catch {}
                return sent
            }
            let claimed = try Self.sendingAtKill(dataDir)
            let answered = batches.filter { $0.status != nil }, unanswered = batches.filter { $0.status == nil }
            for batch in answered { #expect(batch.status == 202 && batch.accepted == Set(batch.ids), "\(batch.status ?? 0)") }
            let accepted = Set(answered.flatMap(\.accepted))
            #expect(accepted.count >= 100, "too little load before the kill")

            let restarted = try await ServerProcess(dataDir: dataDir)
            defer { restarted.stop() }
            let deadline = ContinuousClock.now + .seconds(90)
            while !accepted.isSubset(of: ssp.deliveries.withLock({ Set($0.keys) })) && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            let statuses = try await Self.finalStatuses(batches.flatMap(\.ids), server: restarted, key: sendKey, until: deadline)
            let deliveries = ssp.deliveries.withLock { $0 }
            #expect(accepted.allSatisfy { statuses[$0] == "sent" }, "an accepted message did not end sent")
            #expect(accepted.isSubset(of: Set(deliveries.keys)), "\(accepted.subtracting(deliveries.keys).count) accepted messages never delivered")
            var unansweredDelivered = 0
            for batch in unanswered {
                let delivered = batch.ids.filter { deliveries[$0] != nil }
                #expect(delivered.isEmpty || delivered.count == batch.ids.count, "an unanswered batch was half-queued")
                let status: String?? = delivered.isEmpty ? .some(nil) : .some("sent")
                #expect(batch.ids.allSatisfy { statuses[$0] == status }, "an unanswered batch's statuses disagree with its deliveries")
                unansweredDelivered += delivered.isEmpty ? 0 : 1
            }
            let expected = accepted.union(unanswered.filter { deliveries[$0.ids[0]] != nil }.flatMap(\.ids))
            #expect(Set(deliveries.keys) == expected, "delivered messages that were refused or never sent")
            // At least once across a crash: only a message claimed at the kill may be handed over again.
            let duplicates = deliveries.filter { $0.value > 1 }
            #expect(duplicates.values.allSatisfy { $0 == 2 }, "a message delivered more than twice")
            #expect(Set(duplicates.keys).isSubset(of: claimed), "a duplicate that was not in flight at the kill")
            print("""
                sending drill: \(accepted.count) messages accepted in \(answered.count) batches, \(unanswered.count) batches \
                unanswered (\(unansweredDelivered) of them queued and delivered); \(claimed.count) claimed at the kill; \
                \(deliveries.count) distinct delivered, \(duplicates.count) delivered twice
                """)
        }
    }

    @Test func aProviderDownForAMinuteGetsEveryMessageExactlyOnceAfterItRecovers() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let sendKey = try Drill.sendKey("acme", dataDir: dataDir)
        let ssp = RecordingSSP()
        try await ssp.serve(workspaceIn: dataDir) {
            let server = try await ServerProcess(dataDir: dataDir)
            defer { server.stop() }
            try await Self.ingestRecipients(20, server: server, key: key)
            let outage = ContinuousClock.now
            ssp.failingUntil.withLock { $0 = outage + .seconds(60) }
            // One batch as the provider goes down, one in the middle of the outage.
            var ids: [String] = []
            for (batch, at) in [(0, 0), (1, 30)] {
                try await Task.sleep(until: outage + .seconds(at))
                let batchIDs = (0..<20).map { "o\(batch)-\($0)" }
                let answer = try await server.signed("POST", "/v1/workspaces/acme/messages", key: sendKey,
                                                     body: #"{"messages":[\#(Self.messages(batchIDs, recipients: 20).joined(separator: ","))]}"#)
                #expect(answer.status == 202 && answer.text.contains(#""accepted":20"#), "\(answer.text)")
                ids += batchIDs
            }

            // Late in the outage every message has been tried and put back, more than once.
            try await Task.sleep(until: outage + .seconds(50))
            for id in ids {
                let status = try #require(try await server.messageStatus(id, key: sendKey))
                let retries = status.history.filter { $0.status == "queued" && $0.errorCode == "http_503" }.count
                #expect(["queued", "sending"].contains(status.status) && retries >= 2, "\(id): \(status.status), \(retries) retries")
            }
            #expect(ssp.deliveries.withLock { $0.isEmpty })

            // The backoff reaches 64 s at the 7th attempt: the last messages go within about two minutes.
            let statuses = try await Self.finalStatuses(ids, server: server, key: sendKey, until: outage + .seconds(150))
            let deliveries = ssp.deliveries.withLock { $0 }
            #expect(ids.allSatisfy { statuses[$0] == "sent" }, "not all sent: \(Set(statuses.values.map { $0 ?? "absent" }))")
            #expect(deliveries == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }), "each message must be delivered exactly once")
            let attempts = try await Drill.concurrentMap(ids) { id in try await server.messageStatus(id, key: sendKey)?.attempts ?? 0 }
            print("""
                provider outage drill: \(ids.count) messages, \(ssp.refusals.withLock { $0 }) sends refused during the outage, \
                attempts per message \(attempts.min() ?? 0)-\(attempts.max() ?? 0), \
                \(deliveries.count) delivered; done \(Int((ContinuousClock.now - outage).components.seconds)) s after the outage began
                """)
        }
    }
}

import DomicileOutbound
import NIOCore
import NIOPosix
import Testing

/// The server names the current event loop's executor to the store, so that a write comes back
/// to its connection's loop after the group commit.
@Suite("Event loop task executors")
struct EventLoopTaskExecutorTests {
    @Test func currentNamesTheLoopThatRunsThisThread() async throws {
        #expect(EventLoopTaskExecutor.current == nil, "the test's own thread runs no event loop")
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            let named = try await loop.submit { EventLoopTaskExecutor.current?.runs(loop) ?? false }.get()
            #expect(named)
        }
    }

    @Test func aTaskPreferringItRunsOnItsLoop() async throws {
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            let executor = try #require(try await loop.submit { EventLoopTaskExecutor.current }.get())
            let onLoop = await withTaskExecutorPreference(executor) {
                await Task.yield()
                return loop.inEventLoop
            }
            #expect(onLoop)
        }
    }
}

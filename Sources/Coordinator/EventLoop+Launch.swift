import Foundation
import Store
import SweepKit
import Wire

/// A launch in parts, between its `launch_begin` and `launch_end` (docs/protocol.md, "A launch
/// in parts"): the plan without its tasks, and how many of them have been staged so far.
struct LaunchSession {
    var plan: SweepPlan
    /// Tasks `launch_begin` announced; `launch_end` merges only when all of them came.
    var expected: Int
    var received = 0
    /// The routing identity of the control connection that began it: only it may continue it.
    var client: [UInt8]
    var lastActivity: Double
}

/// A big plan arrives as parts of `LaunchTasks.partSize` tasks, each decoded and staged (in
/// the store's temporary tables) in one turn of the loop, so workers are served between parts;
/// `launch_end` merges them in one transaction and hands the sweep to the scheduler.
extension EventLoop {
    /// Launches in parts open at once (any more is refused until one ends or expires).
    static let maxLaunchSessions = 8

    func launchBegin(_ begin: LaunchBegin, client: [UInt8], now: Double) throws -> ControlReply {
        guard launchSessions.count < Self.maxLaunchSessions else {
            throw CoordinatorError(
                "\(Self.maxLaunchSessions) launches are already in progress; try again when one has ended "
                    + "(an abandoned one is dropped after \(Scheduler.seconds(config.launchSessionIdle)) without a part)"
            )
        }
        let session = Scheduler.randomAttemptId()
        launchSessions[session] = LaunchSession(
            plan: begin.plan, expected: begin.tasks, client: client, lastActivity: now)
        return ControlReply(ok: true, body: ["session": .string(session), "tasks": .number(Double(begin.tasks))])
    }

    func launchPart(_ part: LaunchTasks, client: [UInt8], now: Double) throws -> ControlReply {
        var session = try openSession(part.session, client: client)
        guard part.first == session.received else {
            throw CoordinatorError(
                "this part of sweep \(session.plan.name)'s launch starts at task \(part.first), "
                    + "but \(session.received) task(s) have come so far; send the parts in order")
        }
        guard part.tasks.count <= session.expected - session.received else {
            abandon(part.session)
            throw CoordinatorError(
                "sweep \(session.plan.name)'s launch announced \(session.expected) task(s) and this part brings "
                    + "more; nothing of it was launched")
        }
        do {
            try store.stageLaunch(session: part.session, sweep: session.plan.name, first: part.first, tasks: part.tasks)
        } catch {
            abandon(part.session)
            throw error
        }
        session.received += part.tasks.count
        session.lastActivity = now
        launchSessions[part.session] = session
        return ControlReply(ok: true, body: ["received": .number(Double(session.received))])
    }

    func launchEnd(_ end: LaunchEnd, client: [UInt8], now: Double) throws -> ControlReply {
        let session = try openSession(end.session, client: client)
        guard session.received == session.expected else {
            throw CoordinatorError(
                "sweep \(session.plan.name)'s launch announced \(session.expected) task(s) and \(session.received) "
                    + "came; send the rest before `launch_end`")
        }
        launchSessions[end.session] = nil
        do {
            return try commitLaunch(session.plan, now: now) {
                try store.finishLaunch(session: end.session, plan: session.plan, now: now)
            }
        } catch {
            if fatalStoreError == nil { try? store.discardLaunch(session: end.session) }
            throw error
        }
    }

    /// Drops the sessions that have been idle too long, with what they staged.
    func expireLaunches(now: Double) {
        guard !launchSessions.isEmpty else { return }
        for (id, session) in launchSessions where now - session.lastActivity > config.launchSessionIdle {
            abandon(id)
            logProblem(
                event: "launch",
                "dropped the launch of sweep \(session.plan.name) after \(Scheduler.seconds(config.launchSessionIdle)) without a part "
                    + "(\(session.received) of \(session.expected) task(s) had come)")
        }
    }

    /// The session `id`, if the connection asking began it. Another connection learns nothing
    /// more than that there is no such launch for it.
    private func openSession(_ id: String, client: [UInt8]) throws -> LaunchSession {
        guard let session = launchSessions[id], session.client == client else {
            throw CoordinatorError(
                "there is no launch in progress with session \(id) for this connection (it ended, expired after "
                    + "\(Scheduler.seconds(config.launchSessionIdle)) without a part, or the coordinator restarted); launch again"
            )
        }
        return session
    }

    private func abandon(_ id: String) {
        launchSessions[id] = nil
        try? store.discardLaunch(session: id)
    }
}

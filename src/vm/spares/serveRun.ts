/**
 * The lean `pyro run`: a one-shot run served by a ready spare without the CLI's
 * runtime (its command tree, the kernel and environment stores, QEMU's layer),
 * loaded by bin/pyro.js as its own small bundle (dist/runSpare.cjs) for the plain
 * `pyro run ENV [--vcpu-count N] [--mem-mib N] [--timeout-seconds N]
 * [--ttl-seconds N] -- COMMAND...`. It answers "not served" whenever anything is
 * off — no index entry for the shape or a stale one, no ready spare, a spare past
 * its idle limit, the active-VM limit reached, a connection that fails, an input
 * or a config the full path would refuse — always before the command started, so
 * the full CLI then runs exactly as it would have (and prints the real error).
 *
 * Every rule is the full path's own module: the input schema and admission, the
 * config's resolution, the limit and the state lock (runClaim.ts), the spare store,
 * the agent connection and `runCommand`, the refill.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { EXIT_INTERRUPTED, EXIT_RUNTIME_FAILURE } from "../../cli/exitCode.js"
import { writeStderr, writeStdout } from "../../cli/output.js"
import { VmRunInput } from "../../contract/vm.js"
import { make as makeConfig } from "../../layers/PyroConfigLive.js"
import { machineKinds, outsideLimit } from "../../layers/machineKinds.js"
import { ensureBelowLimit } from "../../machine/limit.js"
import { Caller, OPERATOR } from "../../services/Caller.js"
import { admit } from "../admission.js"
import { connectAgentWithin } from "../agentConnection.js"
import { runCommand, WORKDIR } from "../execCommand.js"
import { guestCommandEnv, hasNetwork } from "../network/policy.js"
import { claimRunSlot } from "../runClaim.js"
import { qemuExecutable } from "../vmmIdentity.js"
import { buildIdentity, readSpareIndex } from "./shapeIndex.js"
import { fillerBundle, refillShape } from "./spawnFiller.js"
import { listSpares, pastIdle, spareHostOf, spareIdleMs } from "./store.js"

/** The run as bin/pyro.js parsed it: `vm_run`'s input fields, by their names. */
export type LeanRunArgs = Readonly<Record<string, unknown>>

/** Why the full CLI runs instead (shown with PYRO_DEBUG_PATH=1). */
class NotServed extends Data.TaggedError("NotServed")<{ readonly reason: string }> {}

/** How long a spare's agent may take to accept a connection: it is warm and waiting, so not long. */
const CONNECT_TIMEOUT_MS = 5_000

const debug = (line: string) => {
  if (process.env.PYRO_DEBUG_PATH === "1") process.stderr.write(`pyro-debug: ${line}\n`)
}

const notServed = (reason: string) => Effect.fail(new NotServed({ reason }))

const serve = (args: LeanRunArgs, started: { value: boolean }) =>
  Effect.gen(function*() {
    const input = yield* Effect.mapError(Schema.decodeUnknown(VmRunInput)(args), () => new NotServed({ reason: "input" }))
    const config = yield* Effect.mapError(makeConfig, () => new NotServed({ reason: "config" }))
    const network = yield* Effect.mapError(admit(input, config.allowHosts), () => new NotServed({ reason: "admission" }))
    if (hasNetwork(network) || input.allow_host_compat) return yield* notServed("network")
    const qemu = qemuExecutable(config.qemuBinary)
    const build = buildIdentity(fillerBundle())
    if (build === undefined) return yield* notServed("no build")
    const key = readSpareIndex(config.stateDir, {
      environment: input.environment,
      vcpus: input.vcpu_count,
      memMib: input.mem_mib,
      cacheDir: config.cacheDir,
      kernelPath: config.kernelPath,
      kernelModulesDir: config.kernelModulesDir,
      build,
      ...spareHostOf(config, qemu)
    })
    if (key === undefined) return yield* notServed("no index entry")
    // A spare past its idle limit is the full path's to reap (at its start), not ours to use.
    const now = Date.now()
    const stale = listSpares(config.stateDir, key).some((e) =>
      Option.isSome(e.record) && e.record.value.state === "ready" && pastIdle(e.record.value, spareIdleMs(config), now)
    )
    if (stale) return yield* notServed("idle spares to reap")
    const claim = yield* claimRunSlot({
      stateDir: config.stateDir,
      checkLimit: ensureBelowLimit(config.stateDir, machineKinds, config.maxActiveVms, outsideLimit),
      spareKey: key,
      spareOnly: true,
      qemu,
      // Like the full path's: after the run, make the shape whole again.
      afterRelease: refillShape(config, key, { environment: input.environment, vcpu_count: input.vcpu_count, mem_mib: input.mem_mib }, config.spares)
    }).pipe(Effect.catchTag("VmLimitReached", () => notServed("limit")))
    if (Option.isNone(claim)) return yield* notServed("no spare")
    const { paths } = claim.value
    const connection = yield* connectAgentWithin(paths.channelSocket, CONNECT_TIMEOUT_MS).pipe(
      Effect.mapError(() => new NotServed({ reason: "connection" }))
    )
    debug(`served by spare ${paths.id}`)
    started.value = true
    const outcome = yield* runCommand(connection, {
      command: input.command,
      cwd: WORKDIR,
      env: guestCommandEnv(network),
      timeoutSeconds: input.timeout_seconds,
      maxOutputBytes: config.maxOutputBytes,
      onOutput: (fd, bytes) => (fd === 1 ? writeStdout(bytes) : writeStderr(bytes))
    }).pipe(
      // The command ran (or may have): from here a failure is the run's, told as the full CLI tells it.
      Effect.catchAll((e) => Effect.as(writeStderr(`pyro: ${e.message}\n`), { exitCode: EXIT_RUNTIME_FAILURE }))
    )
    return outcome.exitCode
  }).pipe(Effect.scoped, Effect.provideService(Caller, OPERATOR))

/**
 * Serve `pyro run` with these arguments on a spare: the exit code, or undefined when
 * the full CLI must run instead (nothing was claimed or run then). SIGINT and SIGTERM
 * stop the run the way they stop the full CLI's: the VM killed, its directory removed, 130.
 */
export const serveRun = (args: LeanRunArgs): Promise<number | undefined> =>
  new Promise((resolve) => {
    // Once the command started, the full CLI must never run it again: any end is the run's.
    const started = { value: false }
    const fiber = Effect.runFork(serve(args, started))
    const interrupt = () => Effect.runFork(Fiber.interrupt(fiber))
    process.once("SIGINT", interrupt)
    process.once("SIGTERM", interrupt)
    fiber.addObserver((exit) => {
      process.off("SIGINT", interrupt)
      process.off("SIGTERM", interrupt)
      if (Exit.isSuccess(exit)) return resolve(exit.value)
      if (Exit.isInterrupted(exit)) return resolve(EXIT_INTERRUPTED)
      if (started.value) {
        process.stderr.write(`pyro: ${Cause.pretty(exit.cause)}\n`)
        return resolve(EXIT_RUNTIME_FAILURE)
      }
      const why = Option.match(Cause.failureOption(exit.cause), { onNone: () => "a defect", onSome: (e) => (e instanceof NotServed ? e.reason : e.message) })
      debug(`full path: ${why}`)
      resolve(undefined)
    })
  })

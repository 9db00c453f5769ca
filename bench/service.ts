/**
 * bench/service: on one tiny workspace, a TCP server (busybox httpd) brought
 * up two ways, start to ready (p50):
 *  - service_start with tcp readiness polled every 10 ms (the start and the
 *    in-guest wait: one exec);
 *  - one plain exec that starts the same server in the background and polls
 *    its port with `nc` (connect, EOF) every 10 ms until it accepts (what a client would
 *    do by hand, in one round trip).
 * Each server is stopped between runs, untimed. Prints both and the ratio
 * (goal <= 1.2), then the same exec run raw over the channel (no journal,
 * no disk sync: the floor under both) and the ratio to it, and one summary
 * line for scripts.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { WorkspaceExecInput } from "../src/contract/workspace/exec.js"
import { WorkspaceCreateInput } from "../src/contract/workspace/lifecycle.js"
import { ServiceNameInput, ServiceStartInput } from "../src/contract/workspace/services.js"
import { servicesLayer } from "../src/layers/App.js"
import { layerWith } from "../src/layers/PyroConfigLive.js"
import { Caller, OPERATOR } from "../src/services/Caller.js"
import { ProgressSilent } from "../src/services/Progress.js"
import { WorkspaceManager } from "../src/services/WorkspaceManager.js"
import { runCommand } from "../src/vm/execCommand.js"
import { startService, stopService } from "../src/workspace/ops/services.js"
import { benchDir, iterations, median, runBench } from "./support.js"

const SERVICE_PORT = 8080
const EXEC_PORT = 8081
const server = (port: number) => `busybox httpd -f -p ${port} -h /workspace`

/** Median wall time of `n` runs of `timed` (after one warm-up), each followed by `untimed`. */
const p50 = <E, R, E2, R2>(n: number, timed: Effect.Effect<unknown, E, R>, untimed: Effect.Effect<unknown, E2, R2>) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i <= n; i++) {
      const t = performance.now()
      yield* timed
      if (i > 0) times.push(performance.now() - t)
      yield* untimed
    }
    return median(times)
  })

const program = Effect.scoped(Effect.gen(function*() {
  const n = iterations(20)
  const workspaces = yield* WorkspaceManager
  const ws = yield* workspaces.create(Schema.decodeUnknownSync(WorkspaceCreateInput)({ environment: "tiny", mem_mib: 256 }))
  const id = ws.workspace_id
  yield* Effect.gen(function*() {
    const exec = (command: string) =>
      Effect.flatMap(
        workspaces.exec(Schema.decodeUnknownSync(WorkspaceExecInput)({ workspace_id: id, command })),
        (r) => (r.exit_code === 0 ? Effect.void : Effect.dieMessage(`${command} failed: ${r.stderr}`))
      )

    const serviceInput = Schema.decodeUnknownSync(ServiceStartInput)({
      workspace_id: id,
      service_name: "bench",
      command: server(SERVICE_PORT),
      readiness: { type: "tcp", address: `127.0.0.1:${SERVICE_PORT}` },
      ready_interval_ms: 10
    })
    const service = yield* p50(
      n,
      startService(serviceInput),
      stopService(Schema.decodeUnknownSync(ServiceNameInput)({ workspace_id: id, service_name: "bench" }))
    )

    const startPlain = `${server(EXEC_PORT)} </dev/null >/dev/null 2>&1 & ` +
      `until nc 127.0.0.1 ${EXEC_PORT} </dev/null >/dev/null 2>&1; do usleep 10000; done`
    const stopPlain = `kill $(pidof httpd); while pidof httpd >/dev/null; do usleep 10000; done`
    const plain = yield* p50(n, exec(startPlain), exec(stopPlain))

    const raw = yield* workspaces.withGuest(id, ({ connection }) => {
      const rawExec = (command: string) =>
        Effect.flatMap(
          runCommand(connection, { command, cwd: "/workspace", timeoutSeconds: 60, maxOutputBytes: 64 * 1024 }),
          (r) => (r.exitCode === 0 ? Effect.void : Effect.dieMessage(`raw ${command} failed`))
        )
      return p50(n, rawExec(startPlain), rawExec(stopPlain))
    })

    const ratio = service / plain
    console.log(`bench/service (${n} runs each after a warm-up; busybox httpd in tiny)`)
    console.log(`  plain exec: start in background, poll port   p50 ${plain.toFixed(1)} ms`)
    console.log(`  service_start with tcp readiness             p50 ${service.toFixed(1)} ms   ratio ${ratio.toFixed(2)} (goal <= 1.2)`)
    console.log(`  the same exec, raw (no journal, no sync)     p50 ${raw.toFixed(1)} ms   service ratio ${(service / raw).toFixed(2)}`)
    console.log(`service: start_ready_exec=${ratio.toFixed(2)} start_ready_raw=${(service / raw).toFixed(2)}`)
  }).pipe(Effect.ensuring(workspaces.remove(id)))
}))

runBench(Effect.scoped(Effect.gen(function*() {
  const stateDir = yield* benchDir("service")
  yield* program.pipe(
    Effect.provideService(Caller, OPERATOR),
    Effect.provide(servicesLayer(layerWith({ stateDir }), ProgressSilent))
  )
})))

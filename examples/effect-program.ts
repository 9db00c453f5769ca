/**
 * pyro from an Effect program: the VmManager service over the live layers, with
 * output streamed as it arrives and a prepared VM whose cleanup is tied to a Scope.
 *
 *   npx vite-node examples/effect-program.ts      (PYRO_EXAMPLE_ENV, default tiny)
 *
 * Outside this repository, import from "pyro-sandbox" instead of ../src/entrypoints/sdk.js.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import {
  ProgressSilent,
  PyroConfigLive,
  servicesLayer,
  VmCreateInput,
  VmExecInput,
  VmManager,
  VmRunInput
} from "../src/entrypoints/sdk.js"

const environment = process.env["PYRO_EXAMPLE_ENV"] ?? "tiny"

const program = Effect.gen(function*() {
  const vms = yield* VmManager

  // One command in a fresh VM; `make` fills in the contract's defaults.
  const { result } = yield* vms.run(
    VmRunInput.make({ environment, command: "echo streamed; uname -s" }),
    { onOutput: (_fd, bytes) => Effect.sync(() => process.stdout.write(bytes)) }
  )
  yield* Console.log(`vm_run: exit_code=${result.exit_code} boot_ms=${result.boot_ms} mode=${result.execution_mode}`)

  // A VM prepared first: deleted when the scope closes, even on failure or interruption.
  // (vm_exec deletes it after its one command anyway; the release then finds nothing.)
  const exec = yield* Effect.scoped(Effect.gen(function*() {
    const vm = yield* Effect.acquireRelease(
      vms.create(VmCreateInput.make({ environment, mem_mib: 256 })),
      (vm) => Effect.ignore(vms.remove(vm.vm_id))
    )
    yield* vms.start(vm.vm_id)
    return yield* vms.exec(VmExecInput.make({ vm_id: vm.vm_id, command: ["cat", "/proc/cpuinfo"] }))
  }))
  yield* Console.log(`vm_exec: exit_code=${exec.exit_code} cpuinfo_bytes=${exec.stdout_bytes} deleted=${exec.deleted}`)
}).pipe(
  // Typed failures (BootError, EnvironmentNotFound, VmLimitReached, ...) end up here.
  Effect.tapError((error) => Console.error(`pyro: ${error.message}`))
)

// Config from PYRO_* variables; use PyroConfigWith({ stateDir, ... }) to fix values instead.
program.pipe(Effect.provide(servicesLayer(PyroConfigLive, ProgressSilent)), NodeRuntime.runMain)

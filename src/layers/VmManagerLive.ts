import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { randomBytes } from "node:crypto"
import type { VmRunInput } from "../contract/vm.js"
import { EnvironmentStore } from "../services/EnvironmentStore.js"
import { KernelStore } from "../services/KernelStore.js"
import { PyroConfig } from "../services/PyroConfig.js"
import { type RunOptions, VmManager } from "../services/VmManager.js"
import { Vmm } from "../services/Vmm.js"
import { runCommand } from "../vm/execCommand.js"

export const newVmId = () => randomBytes(6).toString("hex")

export const WORKDIR = "/workspace"

export const make = Effect.gen(function*() {
  const config = yield* PyroConfig
  const vmm = yield* Vmm
  const kernels = yield* KernelStore
  const environments = yield* EnvironmentStore

  const run = (input: VmRunInput, options: RunOptions = {}) =>
    Effect.scoped(Effect.gen(function*() {
      const started = Date.now()
      const id = newVmId()
      const [assets, environment] = yield* Effect.all([kernels.ensure, environments.ensure(input.environment)], {
        concurrency: 2
      })
      const vm = yield* vmm.bootEphemeral({
        id,
        kernel: assets.kernel,
        initrd: assets.initrd,
        rootImage: environment.rootImage,
        vcpus: input.vcpu_count,
        memMib: input.mem_mib,
        network: input.network
      })
      yield* vm.attach
      const outcome = yield* runCommand(vm.connection, {
        command: input.command,
        cwd: WORKDIR,
        timeoutSeconds: input.timeout_seconds,
        maxOutputBytes: config.maxOutputBytes,
        ...(options.onOutput ? { onOutput: options.onOutput } : {})
      })
      return {
        result: {
          stdout: outcome.stdout.text(),
          stderr: outcome.stderr.text(),
          exit_code: outcome.exitCode,
          duration_ms: Date.now() - started,
          execution_mode: "guest_virtio_serial" as const,
          timed_out: outcome.timedOut,
          stdout_truncated: outcome.stdout.truncated,
          stderr_truncated: outcome.stderr.truncated,
          stdout_bytes: outcome.stdout.total,
          stderr_bytes: outcome.stderr.total,
          vm_id: id,
          environment: environment.name,
          boot_ms: vm.bootMs
        },
        stdout: outcome.stdout.bytes(),
        stderr: outcome.stderr.bytes()
      }
    })).pipe(Effect.withSpan("VmManager.run", { attributes: { environment: input.environment } }))

  return VmManager.of({ run })
})

export const VmManagerLive = Layer.effect(VmManager, make)

import * as Options from "@effect/cli/Options"
import { DEFAULT_MEM_MIB, DEFAULT_TIMEOUT_SECONDS, DEFAULT_TTL_SECONDS, DEFAULT_VCPU_COUNT } from "../contract/common.js"

export const json = Options.boolean("json").pipe(Options.withDescription("Print the result as JSON on stdout"))

export const sizing = {
  vcpuCount: Options.integer("vcpu-count").pipe(
    Options.withDefault(DEFAULT_VCPU_COUNT),
    Options.withDescription("Virtual CPUs")
  ),
  memMib: Options.integer("mem-mib").pipe(Options.withDefault(DEFAULT_MEM_MIB), Options.withDescription("Guest memory in MiB")),
  timeoutSeconds: Options.integer("timeout-seconds").pipe(
    Options.withDefault(DEFAULT_TIMEOUT_SECONDS),
    Options.withDescription("Kill the command after this many seconds (exit code 124)")
  ),
  ttlSeconds: Options.integer("ttl-seconds").pipe(
    Options.withDefault(DEFAULT_TTL_SECONDS),
    Options.withDescription("Seconds from creation until the VM is reaped")
  ),
  network: Options.boolean("network").pipe(Options.withDescription("Give the guest outbound network access")),
  allowHostCompat: Options.boolean("allow-host-compat").pipe(
    Options.withDescription("If no VM can boot, run on the host instead (no isolation)")
  )
}

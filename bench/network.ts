/**
 * bench/network: what the egress jail (src/vm/network/egress.ts) costs a
 * guest's downloads. Two raw VMs of the same kernel, agent and tiny image,
 * booted the same way, one with plain QEMU user networking (the guest could
 * reach the host: today's baseline) and one in the jail pyro runs every
 * networked VM in; each downloads BENCH_MB (200) MB from a test host made
 * here in a network namespace on TEST-NET-2, timed inside the guest,
 * alternated BENCH_N (5) times. Prints MB/s medians and their ratio, and the
 * jail's cost at start. Needs root (the test host's namespace).
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import * as Path from "node:path"
import { makeScratchImage } from "../src/environment/ext4.js"
import { connectAgent } from "../src/vm/agentConnection.js"
import { runCommand } from "../src/vm/execCommand.js"
import { awaitEgress, jailed, prepareEgress } from "../src/vm/network/egress.js"
import { SCRATCH_SERIAL } from "../src/vm/qemu/args.js"
import { spawnVmm } from "../src/vm/qemu/process.js"
import { PUBLIC_TEST_ADDRESS, TEST_HOST_PORT, testHost } from "../test/support/testHost.js"
import { benchDir, iterations, median, rawTinyVm, runBench, services } from "./support.js"

const MB = Number(process.env.BENCH_MB ?? 200)

/** A cold-booted, attached tiny VM with a NIC: plain, or in the egress jail. Returns its connection. */
const rawVm = (dir: string, jail: boolean) =>
  Effect.gen(function*() {
    const { args, scratch } = yield* rawTinyVm(dir, { name: "pyro-bench-net", memMib: 512, network: true })
    yield* makeScratchImage(scratch, 1024, false)
    const argv = ["qemu-system-x86_64", ...args]
    const netDir = Path.join(dir, "net")
    const started = performance.now()
    if (jail) yield* prepareEgress(netDir)
    yield* spawnVmm(jail ? jailed(netDir, argv) : argv, { _tag: "ephemeral" })
    const connection = yield* connectAgent(Path.join(dir, "channel.sock")).pipe(Effect.timeout("60 seconds"))
    if (jail) yield* awaitEgress(netDir)
    const readyMs = performance.now() - started
    yield* connection.attach({
      scratchSerial: SCRATCH_SERIAL,
      realtimeNs: BigInt(Date.now()) * 1_000_000n,
      entropy: randomBytes(64),
      hostname: "bench"
    })
    return { connection, readyMs }
  })

/** Seconds the guest takes to download MB megabytes from the test host (its own clock). */
const download = (connection: Effect.Effect.Success<ReturnType<typeof rawVm>>["connection"]) =>
  Effect.gen(function*() {
    const url = `http://${PUBLIC_TEST_ADDRESS}:${TEST_HOST_PORT}/bytes/${MB * 1_000_000}`
    const out = yield* runCommand(connection, {
      command: `a=$(cut -d' ' -f1 /proc/uptime); wget -q -O /dev/null ${url} || exit 1; b=$(cut -d' ' -f1 /proc/uptime); echo "$a $b"`,
      cwd: "/",
      timeoutSeconds: 600,
      maxOutputBytes: 4096
    })
    if (out.exitCode !== 0) throw new Error(`download failed: ${out.stderr.text()}`)
    const [a, b] = out.stdout.text().trim().split(" ").map(Number)
    return b! - a!
  })

const program = Effect.gen(function*() {
  const n = iterations(5)
  yield* testHost
  const dir = yield* benchDir("network")
  const plain = yield* rawVm(Path.join(dir, "plain"), false)
  const jail = yield* rawVm(Path.join(dir, "jail"), true)
  // One untimed round each: the page cache, the guest's TCP warm-up.
  yield* download(plain.connection)
  yield* download(jail.connection)
  const plainMbs: Array<number> = []
  const jailMbs: Array<number> = []
  for (let i = 0; i < n; i++) {
    plainMbs.push(MB / (yield* download(plain.connection)))
    jailMbs.push(MB / (yield* download(jail.connection)))
  }
  const ratio = median(jailMbs) / median(plainMbs)
  console.log(`bench/network (${MB} MB from a test host on TEST-NET-2, ${n} runs each, alternated)`)
  console.log(`  plain QEMU user networking (reaches the host)   median ${median(plainMbs).toFixed(1)} MB/s`)
  console.log(`  pyro's egress jail (public addresses only)      median ${median(jailMbs).toFixed(1)} MB/s`)
  console.log(`  ratio jail/plain = ${ratio.toFixed(2)}`)
  console.log(`  spawn to ready: plain ${(plain.readyMs / 1000).toFixed(2)} s, jail ${(jail.readyMs / 1000).toFixed(2)} s (one cold boot each)`)
})

runBench(program.pipe(Effect.scoped, Effect.provide(services)))

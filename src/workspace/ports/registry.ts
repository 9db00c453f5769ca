/**
 * Which ports a service publishes, on the host: `ports/NAME.json` in the
 * workspace's directory names the forwarder process that listens for them
 * (pid and start time) and the ports. A port counts as published only while
 * that very process lives; the file outlives it harmlessly.
 */
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { PUBLISHED_PORT_HOST, type PublishedPort } from "../../contract/workspace/services.js"
import { isAlive, type ProcessIdentity } from "../../vm/procfs.js"

export const PortPair = Schema.Struct({ guest_port: Schema.Int, host_port: Schema.Int })
export type PortPair = typeof PortPair.Type

const ForwarderRecord = Schema.Struct({ pid: Schema.Int, startTime: Schema.Number, ports: Schema.Array(PortPair) })
type ForwarderRecord = typeof ForwarderRecord.Type
const decodeRecord = Schema.decodeUnknownOption(Schema.parseJson(ForwarderRecord))

export const portsDir = (workspaceDir: string) => Path.join(workspaceDir, "ports")
const recordPath = (workspaceDir: string, service: string) => Path.join(portsDir(workspaceDir), `${service}.json`)
export const forwarderLog = (workspaceDir: string, service: string) => Path.join(portsDir(workspaceDir), `${service}.log`)

export const writeForwarder = (workspaceDir: string, service: string, who: ProcessIdentity, ports: ReadonlyArray<PortPair>) => {
  Fs.mkdirSync(portsDir(workspaceDir), { recursive: true, mode: 0o700 })
  const file = recordPath(workspaceDir, service)
  Fs.writeFileSync(`${file}.partial`, JSON.stringify({ pid: who.pid, startTime: who.startTime, ports }), { mode: 0o600 })
  Fs.renameSync(`${file}.partial`, file)
}

const readForwarder = (workspaceDir: string, service: string): ForwarderRecord | undefined => {
  try {
    const record = decodeRecord(Fs.readFileSync(recordPath(workspaceDir, service), "utf8"))
    return record._tag === "Some" ? record.value : undefined
  } catch {
    return undefined
  }
}

/** The ports a service publishes now: none unless its forwarder is alive. */
export const publishedPorts = (workspaceDir: string, service: string): ReadonlyArray<PublishedPort> => {
  const record = readForwarder(workspaceDir, service)
  if (!record || !isAlive(record)) return []
  return record.ports.map((p) => ({ ...p, host: PUBLISHED_PORT_HOST }))
}

/** End a service's forwarder (its listeners close with it) and forget it. */
export const stopForwarder = (workspaceDir: string, service: string) => {
  const record = readForwarder(workspaceDir, service)
  if (record && isAlive(record)) {
    try {
      process.kill(record.pid, "SIGTERM")
    } catch {
      // gone meanwhile
    }
  }
  Fs.rmSync(recordPath(workspaceDir, service), { force: true })
}

/** Every forwarder of the workspace (its delete). */
export const stopAllForwarders = (workspaceDir: string) => {
  let names: Array<string> = []
  try {
    names = Fs.readdirSync(portsDir(workspaceDir)).filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5))
  } catch {
    return
  }
  for (const name of names) stopForwarder(workspaceDir, name)
}

/**
 * A fresh machine has only what scripts/setup.sh installs. Every system
 * command run by src/, test/, bench/ or scripts/ must be in the tool table,
 * every package in the table must be installed by setup.sh, and each command
 * must really come from its package (dpkg says so) and be on PATH.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { SYSTEM_TOOLS, type ToolName } from "../../src/host/systemTools.js"
import { which } from "../../src/host/which.js"
import { AGENT_COMPILER } from "../../src/kernel/agentBuild.js"
import { REGISTRY_BINARY } from "../support/registry.js"

const repoRoot = Path.resolve(import.meta.dirname, "../..")
const isTool = (name: string): name is ToolName => Object.hasOwn(SYSTEM_TOOLS, name)

/** Calls whose first argument is the command to run. */
const SPAWN = /\b(?:runHostCommand|execFileSync|execFile|spawnSync|spawn|which|timeProcess|tool|runProcess)\(\s*([^,)\s]+)/g

/**
 * Non-literal first arguments and what they stand for: a tool of the table,
 * or something that is not a system command at all.
 */
const KNOWN_EXPRESSIONS: Record<string, ToolName | "not a system command"> = {
  "process.execPath": "not a system command", // node itself
  "config.qemuBinary": "qemu-system-x86_64", // PYRO_QEMU, default qemu-system-x86_64
  AGENT_COMPILER: "musl-gcc",
  REGISTRY_BINARY: "docker-registry",
  BUSYBOX: "busybox",
  "Path.join(root": "not a system command", // the tiny environment's own busybox, run to list its applets
  out: "not a system command", // the wire test binary just compiled
  "native.tool": "not a system command", // a guest C test binary just compiled (test/support/guestNative.ts)
  runsc: "runsc",
  pyroBin: "env", // bin/pyro.js run as a command: its first line is `#!/usr/bin/env -S ...`
  // Wrappers that run a command they were given; their callers are checked here too.
  command: "not a system command",
  "file!": "not a system command",
  "command!": "not a system command",
  // A head start replays the commands the full path recorded (src/vm/headStart/recipe.ts), each checked where it is made.
  "argv[0]!": "not a system command",
  name: "not a system command",
  path: "not a system command",
  // A chat host's own CLI (claude, codex), run only when the user has it on PATH; tests install it from npm.
  "spec.bin": "not a system command",
  bin: "not a system command",
  "Path.join(prefix": "not a system command"
}

/** Node itself and what it ships with: there before pyro is. */
const NODE_TOOLS = new Set(["node", "npm", "npx"])

const sourceFiles = (tops = ["src", "test", "bench", "scripts"], pattern = /\.(ts|mjs|js)$/): Array<string> => {
  const out: Array<string> = []
  const walk = (dir: string) => {
    for (const entry of Fs.readdirSync(dir, { withFileTypes: true })) {
      const full = Path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (pattern.test(entry.name)) out.push(full)
    }
  }
  for (const top of tops) walk(Path.join(repoRoot, top))
  return out
}

const setupPackages = (): Set<string> => {
  const script = Fs.readFileSync(Path.join(repoRoot, "scripts", "setup.sh"), "utf8")
  const block = /PACKAGES=\(([\s\S]*?)\n\)/.exec(script)?.[1] ?? ""
  return new Set(block.split("\n").flatMap((line) => line.replace(/#.*/, "").trim().split(/\s+/)).filter(Boolean))
}

/** The package dpkg says owns `path` (usrmerge: /bin and /usr/bin are one directory, registered under either). */
const owningPackage = (path: string): string | undefined => {
  const real = Fs.realpathSync(path)
  const candidates = new Set([path, real, real.replace(/^\/usr\//, "/"), path.replace(/^\/usr\//, "/"), `/usr${real}`])
  for (const candidate of candidates) {
    try {
      const line = execFileSync("dpkg-query", ["-S", candidate], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      return line.split(":")[0]?.trim()
    } catch {
      // not registered under this name
    }
  }
  return undefined
}

describe("system tools", () => {
  it("every command the code runs is in the tool table", () => {
    const unlisted: Array<string> = []
    for (const file of sourceFiles()) {
      const text = Fs.readFileSync(file, "utf8")
      for (const match of text.matchAll(SPAWN)) {
        const arg = match[1]!
        const literal = /^"([^"]+)"$/.exec(arg)?.[1]
        const where = `${Path.relative(repoRoot, file)}: ${match[0]}`
        if (literal !== undefined) {
          if (!isTool(literal) && !NODE_TOOLS.has(literal)) unlisted.push(where)
        } else if (!(arg in KNOWN_EXPRESSIONS)) {
          unlisted.push(`${where} (an expression this test does not know: add it to KNOWN_EXPRESSIONS)`)
        }
      }
    }
    expect(unlisted).toEqual([])
    expect(AGENT_COMPILER).toBe("musl-gcc")
    expect(Path.basename(REGISTRY_BINARY)).toBe("docker-registry")
  })

  it("every command a shell script of src/ runs is in the tool table (its \"# Runs:\" line)", () => {
    const unlisted: Array<string> = []
    for (const file of sourceFiles(["src"], /\.sh$/)) {
      const runs = /^# Runs: (.*)$/m.exec(Fs.readFileSync(file, "utf8"))
      if (!runs) unlisted.push(`${Path.relative(repoRoot, file)}: no "# Runs:" line`)
      for (const command of runs?.[1]!.trim().split(/\s+/) ?? []) {
        if (!isTool(command)) unlisted.push(`${Path.relative(repoRoot, file)}: ${command}`)
      }
    }
    expect(unlisted).toEqual([])
  })

  it("scripts/setup.sh installs every package of the table", () => {
    const installed = setupPackages()
    const missing = Object.entries(SYSTEM_TOOLS)
      .filter(([, t]) => !installed.has(t.package))
      .map(([name, t]) => `${name} (${t.package})`)
    expect(missing).toEqual([])
  })

  it("every tool is on PATH and comes from the package the table names", () => {
    const wrong: Array<string> = []
    for (const [name, spec] of Object.entries(SYSTEM_TOOLS)) {
      const path = which(name)
      if (!path) {
        wrong.push(`${name}: not on PATH (setup.sh installs ${spec.package})`)
        continue
      }
      const owner = owningPackage(path)
      if (owner !== spec.package) wrong.push(`${name}: ${path} belongs to ${owner ?? "no package"}, not ${spec.package}`)
    }
    expect(wrong).toEqual([])
  })
})

/**
 * `pyro host`: pyro's MCP server in chat hosts in one command. `connect` runs
 * the host's own CLI (claude, codex), `print-config` prints the file the
 * others read, `doctor` checks what is registered and that the server answers.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { MCP_PROFILES } from "../api/profiles.js"
import { CLAUDE_SCOPES, CLI_HOST_SPECS, CLI_HOSTS } from "../chatHosts/cliHosts.js"
import { CONFIG_HOSTS, hostConfigFiles, hostConfigText } from "../chatHosts/configs.js"
import { type HostDoctorReport, hostDoctor } from "../chatHosts/doctor.js"
import { commandLine, type LaunchOptions, PACKAGE_NAME, serverLaunch } from "../chatHosts/launch.js"
import { runHostCommand } from "../host/command.js"
import { which } from "../host/which.js"
import { setExitCode } from "./exitCode.js"
import { json } from "./options.js"
import { printJson, writeStderr, writeStdout } from "./output.js"
import { checkedProjectRequest, projectFlagsOf, projectOptions, type ProjectOptionValues } from "./projectOptions.js"
import { UsageError } from "./usage.js"

const choices = <A extends string>(names: ReadonlyArray<A>) => names.map((n) => [n, n] as [string, A])

/** How the host starts the server: the options every subcommand that writes a launch takes. */
const launchOptions = {
  local: Options.boolean("local").pipe(
    Options.withDescription(`Start this install's bin/pyro.js by its absolute path, instead of npx -y ${PACKAGE_NAME}`)
  ),
  packageSpec: Options.text("package").pipe(
    Options.optional,
    Options.withDescription(`What npx installs (default ${PACKAGE_NAME}; a version, a tarball or a git URL)`)
  ),
  profile: Options.choice("profile", MCP_PROFILES).pipe(
    Options.optional,
    Options.withDescription("The server's tool profile (default: the server's, workspace-core)")
  ),
  ...projectOptions
}

const launchOf = (args: {
  readonly local: boolean
  readonly packageSpec: Option.Option<string>
  readonly profile: Option.Option<(typeof MCP_PROFILES)[number]>
} & ProjectOptionValues): Effect.Effect<LaunchOptions, UsageError> =>
  Effect.gen(function*() {
    if (args.local && Option.isSome(args.packageSpec)) {
      return yield* new UsageError({ detail: "give --local or --package, not both" })
    }
    const project = projectFlagsOf(args)
    // Refused now rather than by every start of the registered server.
    yield* checkedProjectRequest(project)
    return {
      local: args.local,
      ...Option.match(args.packageSpec, { onNone: () => ({}), onSome: (packageSpec) => ({ packageSpec }) }),
      ...Option.match(args.profile, { onNone: () => ({}), onSome: (profile) => ({ profile }) }),
      ...project
    }
  })

const printConfig = Command.make(
  "print-config",
  { host: Args.choice(choices(CONFIG_HOSTS), { name: "HOST" }), ...launchOptions },
  (args) =>
    Effect.gen(function*() {
      const launch = serverLaunch(yield* launchOf(args))
      yield* writeStdout(hostConfigText(args.host, launch))
      // Where it goes, beside the output rather than in it: stdout can be redirected into the file.
      yield* writeStderr(`# ${args.host} reads it from: ${hostConfigFiles(args.host).join(", ")} (merge into an existing file)\n`)
    })
).pipe(Command.withDescription("Print the MCP configuration that starts pyro in OpenCode, Cursor, VS Code or Claude Desktop"))

const connect = Command.make(
  "connect",
  {
    host: Args.choice(choices(CLI_HOSTS), { name: "HOST" }),
    scope: Options.choice("scope", CLAUDE_SCOPES).pipe(
      Options.optional,
      Options.withDescription("claude-code only: local (this project, you alone; default), user (every project), project (.mcp.json)")
    ),
    ...launchOptions
  },
  (args) =>
    Effect.gen(function*() {
      const spec = CLI_HOST_SPECS[args.host]
      const scope = Option.getOrUndefined(args.scope)
      if (scope && !spec.takesScope) return yield* new UsageError({ detail: `${args.host} takes no --scope` })
      const launch = serverLaunch(yield* launchOf(args))
      const bin = which(spec.bin)
      if (!bin) {
        return yield* Effect.fail(
          new Error(`${spec.bin} is not on PATH; install ${args.host}, or start pyro by hand: ${commandLine(launch)}`)
        )
      }
      if (spec.removeFirst) yield* Effect.ignore(runHostCommand(bin, spec.removeFirst(scope)))
      const { stdout, stderr } = yield* runHostCommand(bin, spec.add(launch, scope))
      yield* writeStderr(stderr)
      yield* writeStdout(stdout)
      yield* writeStdout(`pyro connected to ${args.host}: ${commandLine(launch)}\n`)
    })
).pipe(Command.withDescription("Register pyro's MCP server with Claude Code or Codex, through their own CLI"))

const formatHostDoctor = (r: HostDoctorReport): string => {
  const lines = ["Hosts:"]
  if (r.hosts.length === 0) lines.push("  none found (no claude or codex on PATH, no config file of OpenCode, Cursor, VS Code or Claude Desktop)")
  for (const h of r.hosts) {
    const state = h.error ? `error: ${h.error}` : h.registered ? `pyro registered: ${h.command ?? "?"}${h.status ? ` (${h.status})` : ""}` : "pyro not registered"
    lines.push(`  ${h.host} (${h.where}): ${state}`)
  }
  const s = r.server
  lines.push(
    `Server: ${s.command}: ${s.started ? `started in ${s.startup_ms} ms, ${s.tools.length} tools` : `FAIL (${s.error})`}`,
    `Tool call: ${s.tool_call.tool}: ${s.tool_call.ok ? `ok (${s.tool_call.detail})` : `FAIL (${s.tool_call.detail})`}`
  )
  if (r.issues.length === 0) lines.push("Issues: none")
  else lines.push("Issues:", ...r.issues.flatMap((i) => [`  - ${i.problem}`, `    fix: ${i.fix}`]))
  return lines.join("\n") + "\n"
}

const doctor = Command.make("doctor", { json }, (args) =>
  Effect.gen(function*() {
    const report = yield* hostDoctor()
    yield* args.json ? printJson(report) : writeStdout(formatHostDoctor(report))
    yield* setExitCode(report.ok ? 0 : 1)
  })).pipe(Command.withDescription("Check chat hosts: is pyro registered, does `pyro mcp serve` start, does a tool call work"))

export const hostCommand = Command.make("host").pipe(
  Command.withDescription("Set up pyro's MCP server in chat hosts (Claude Code, Codex, OpenCode, Cursor, VS Code, Claude Desktop)"),
  Command.withSubcommands([connect, printConfig, doctor])
)

/**
 * CLI commands derived from the operations table: positional arguments as
 * each operation's `cli.args` names them, every other input field as a
 * `--kebab-case` option typed, described and defaulted by the field's own
 * schema, and `--json` on all. Values are decoded with the operation's input
 * schema, so the CLI checks exactly what MCP and the SDK check.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import type { CliArg, Operation, OperationServices } from "../api/operation.js"
import { toolJsonSchema } from "../mcp/toolSchema.js"
import { type ExitCode, setExitCode } from "./exitCode.js"
import { restoreForcedArg } from "./forcedArgs.js"
import { json } from "./options.js"
import { printJson, writeStderr, writeStdout } from "./output.js"
import { decodeArgs, UsageError } from "./usage.js"

interface FieldSchema {
  readonly type?: string
  readonly items?: FieldSchema
  readonly enum?: ReadonlyArray<string>
  readonly description?: string
  readonly default?: unknown
}

/** What a derived command needs: the services its handler uses, and where the exit code goes. */
export type DerivedCommand<R extends OperationServices> = Command.Command<string, R | ExitCode, unknown, unknown>

export type AnyCommand = DerivedCommand<OperationServices>

const kebab = (field: string) => field.replaceAll("_", "-")

const described = <A>(option: Options.Options<A>, help: string | undefined) =>
  help ? Options.withDescription(option, help) : option

/** The option for one input field, or undefined for a field the CLI cannot spell as an option. */
const optionFor = (field: string, schema: FieldSchema, required: boolean, help: string | undefined, name = kebab(field)) => {
  const text = help ?? schema.description
  switch (schema.type) {
    case "boolean":
      return described(Options.boolean(name), text)
    case "integer": {
      const option = described(Options.integer(name), text)
      return typeof schema.default === "number"
        ? Options.withDefault(option, schema.default)
        : required
        ? option
        : Options.optional(option)
    }
    case "string": {
      const option = described(schema.enum ? Options.choice(name, schema.enum) : Options.text(name), text)
      return typeof schema.default === "string"
        ? Options.withDefault(option, schema.default)
        : required
        ? option
        : Options.optional(option)
    }
    case "array":
      // A list of words: the option repeated, once per word (`--allow-host a --allow-host b`).
      return schema.items?.type === "string" ? described(Options.repeated(Options.text(name)), text) : undefined
    default:
      return undefined
  }
}

const argFor = (arg: CliArg) => {
  const base = arg.description ? Args.withDescription(Args.text({ name: arg.name }), arg.description) : Args.text({ name: arg.name })
  if (arg.variadic) return Args.atLeast(base, 1)
  return arg.optional ? Args.optional(base) : base
}

/** The value a parsed option or argument gives its field; undefined leaves the schema's default. */
const fieldValue = (value: unknown, arg: CliArg | undefined): unknown => {
  if (Option.isOption(value)) return Option.getOrUndefined(value)
  if (arg?.variadic && Array.isArray(value)) return value.map((a) => restoreForcedArg(String(a)))
  // A flag left off means "the default", not "false": the schema decides; so does a repeated option never given.
  if (value === false) return undefined
  // A repeatable option given no times leaves the field out.
  if (Array.isArray(value) && value.length === 0 && !arg) return undefined
  return value
}

/** The command for one operation (its last path word); the caller nests it under the others. */
export const operationCommand = <R extends OperationServices>(op: Operation<any, any, string, R>): DerivedCommand<R> => {
  const cli = op.cli
  if (!cli) throw new Error(`${op.tool} has no CLI form`)
  const schema = toolJsonSchema(op.input) as {
    readonly properties?: Readonly<Record<string, FieldSchema>>
    readonly required?: ReadonlyArray<string>
  }
  const positional = new Map((cli.args ?? []).map((a) => [a.field, a]))
  const config: Record<string, Options.Options<unknown> | Args.Args<unknown>> = {}
  for (const arg of cli.args ?? []) config[arg.field] = argFor(arg) as Args.Args<unknown>
  const fileOptions = Object.entries(cli.fileOptions ?? {})
  const repeated = Object.entries(cli.repeatedOptions ?? {})
  for (const [field, spec] of repeated) {
    for (const [name, help] of Object.entries(spec.options)) {
      config[`${field}:${name}`] = Options.withDescription(Options.repeated(Options.text(name)), help) as Options.Options<unknown>
    }
  }
  const choiceOptions = Object.entries(cli.choiceOptions ?? {})
  const chosenFields = new Set(choiceOptions.map(([, c]) => c.field))
  for (const [field, fieldSchema] of Object.entries(schema.properties ?? {})) {
    if (positional.has(field) || chosenFields.has(field) || cli.repeatedOptions?.[field]) continue
    const off = cli.offFlags?.[field]
    if (off !== undefined) {
      // Given: false; left off: the schema's default (true).
      config[field] = Options.map(described(Options.boolean(off), cli.optionHelp?.[field]), (on) => (on ? false : undefined))
      continue
    }
    // A field a file may fill instead is optional as an option: one of the two must be given.
    const required = (schema.required?.includes(field) ?? false) && !(cli.fileOptions?.[field])
    const option = optionFor(field, fieldSchema, required, cli.optionHelp?.[field], cli.optionNames?.[field])
    // A field the CLI cannot spell would be silently unreachable from it: refuse to build the command.
    if (!option) throw new Error(`${op.tool}: input field ${field} needs a positional argument (its type has no option form)`)
    config[field] = option as Options.Options<unknown>
  }
  for (const [field, name] of fileOptions) {
    config[`${field}:file`] = Options.optional(
      Options.withDescription(Options.text(name), `A file whose text is the ${kebab(field)} (instead of --${kebab(field)})`)
    ) as Options.Options<unknown>
  }
  for (const [name, choice] of choiceOptions) {
    config[`${name}:choice`] = Options.optional(Options.withDescription(Options.text(name), choice.description)) as Options.Options<unknown>
  }
  for (const [flag, help] of Object.entries(cli.humanFlags ?? {})) {
    config[`${flag}:human`] = Options.withDescription(Options.boolean(flag), help) as Options.Options<unknown>
  }
  const name = cli.path[cli.path.length - 1]!
  return Command.make(name, { ...config, json }, (parsed) =>
    Effect.gen(function*() {
      const values: Record<string, unknown> = {}
      for (const field of Object.keys(config)) {
        if (field.includes(":")) continue
        const raw = (parsed as Record<string, unknown>)[field]
        const value = raw === false && cli.offFlags?.[field] !== undefined ? false : fieldValue(raw, positional.get(field))
        if (value !== undefined) values[field] = value
      }
      for (const [name, choice] of choiceOptions) {
        const text = fieldValue((parsed as Record<string, unknown>)[`${name}:choice`], undefined)
        if (text === undefined) continue
        if (values[choice.field] !== undefined) {
          const others = choiceOptions.filter(([, c]) => c.field === choice.field).map(([n]) => `--${n}`)
          return yield* new UsageError({ detail: `give at most one of ${others.join(", ")}` })
        }
        values[choice.field] = choice.value(String(text))
      }
      for (const [field, name] of fileOptions) {
        const file = fieldValue((parsed as Record<string, unknown>)[`${field}:file`], undefined)
        if (file === undefined) continue
        if (values[field] !== undefined) {
          return yield* new UsageError({ detail: `give --${kebab(field)} or --${name}, not both` })
        }
        values[field] = yield* Effect.try({
          try: () => Fs.readFileSync(String(file), "utf8"),
          catch: (e) => new UsageError({ detail: `--${name}: ${(e as Error).message}` })
        })
      }
      for (const [field, spec] of repeated) {
        const given = Object.fromEntries(
          Object.keys(spec.options).map((name) => [name, (parsed as Record<string, unknown>)[`${field}:${name}`] as ReadonlyArray<string>])
        )
        const { error, value } = spec.parse(given)
        if (error !== undefined) return yield* new UsageError({ detail: error })
        if (value !== undefined) values[field] = value
      }
      const input = yield* decodeArgs(op.input, values)
      if (cli.before) yield* cli.before
      const streaming = cli.streamsOutput && !parsed.json
      const result = yield* op.handler(
        input,
        streaming ? { onOutput: (fd, bytes) => (fd === 1 ? writeStdout(bytes) : writeStderr(bytes)) } : {}
      )
      if (parsed.json) {
        yield* printJson(result)
      } else {
        const flags = new Set(Object.keys(cli.humanFlags ?? {}).filter((f) => (parsed as Record<string, unknown>)[`${f}:human`] === true))
        const human = cli.human(result, flags)
        const out = typeof human === "string" ? { stdout: human } : human
        if (out.stdout) yield* writeStdout(out.stdout)
        if (out.stderr) yield* writeStderr(out.stderr)
      }
      if (cli.exitCode) yield* setExitCode(cli.exitCode(result))
    })).pipe(Command.withDescription(cli.description)) as unknown as DerivedCommand<R>
}

/**
 * The operations' commands, nested by their paths, as top-level commands by name.
 * `groups` describes each intermediate word ("workspace", "workspace sync");
 * `extras` adds hand-written commands to a group ("workspace shell": attach).
 */
export const operationCommands = (
  ops: ReadonlyArray<Operation>,
  groups: Readonly<Record<string, { readonly description: string }>>,
  extras: Readonly<Record<string, ReadonlyArray<AnyCommand>>> = {}
): ReadonlyMap<string, AnyCommand> => {
  interface Node {
    readonly children: Map<string, Node>
    command?: AnyCommand
  }
  const root: Node = { children: new Map() }
  for (const op of ops) {
    if (!op.cli) continue
    let node = root
    for (const word of op.cli.path) {
      let child = node.children.get(word)
      if (!child) node.children.set(word, child = { children: new Map() })
      node = child
    }
    node.command = operationCommand(op)
  }
  const build = (word: string, node: Node, prefix: ReadonlyArray<string>): AnyCommand => {
    if (node.command) return node.command
    const path = [...prefix, word]
    const group = groups[path.join(" ")]
    if (!group) throw new Error(`no description for the command group "${path.join(" ")}"`)
    const children = [...[...node.children].map(([w, n]) => build(w, n, path)), ...(extras[path.join(" ")] ?? [])]
    const [first, ...rest] = children
    return Command.make(word).pipe(Command.withDescription(group.description), Command.withSubcommands([first!, ...rest])) as AnyCommand
  }
  return new Map([...root.children].map(([word, node]) => [word, build(word, node, [])]))
}

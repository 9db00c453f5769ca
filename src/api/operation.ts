/**
 * One public operation, declared once: its MCP tool and SDK method names, a
 * description a model can act on, input and output schemas, MCP annotations,
 * the handler that does it, and how the CLI spells it. The MCP server, the
 * SDK facade and the CLI are all derived from these declarations (src/api/index.ts).
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { formatInputError } from "../contract/common.js"
import { InvalidInput, type PyroError } from "../contract/errors.js"
import type { EnvironmentStore } from "../services/EnvironmentStore.js"
import type { ProjectSourceShape } from "../services/ProjectSource.js"
import type { PyroConfig } from "../services/PyroConfig.js"
import type { VmManager } from "../services/VmManager.js"
import type { WorkspaceManager } from "../services/WorkspaceManager.js"
import type { OutputSink } from "../vm/execCommand.js"

export interface ToolAnnotations {
  readonly title: string
  readonly readOnlyHint: boolean
  readonly destructiveHint: boolean
  readonly idempotentHint: boolean
  /** Whether the tool reaches beyond pyro's own state (a guest with network does). */
  readonly openWorldHint: boolean
}

/** What handlers may use: the services every public form provides. */
export type OperationServices = VmManager | WorkspaceManager | EnvironmentStore | PyroConfig

/** What a surface passes along with the input. Only the CLI streams output as it arrives. */
export interface CallContext {
  readonly onOutput?: OutputSink
}

/** A positional argument of the CLI command, filling one input field. */
export interface CliArg {
  readonly field: string
  /** As shown in usage: ENV, WORKSPACE_ID, COMMAND. */
  readonly name: string
  readonly description?: string
  /** One or more words (the guest command after `--`). */
  readonly variadic?: true
  readonly optional?: true
}

/** What the CLI prints for a result in human mode. */
export interface HumanOutput {
  readonly stdout?: string | Uint8Array
  readonly stderr?: string
}

export interface RepeatedOptions {
  readonly options: Readonly<Record<string, string>>
  readonly parse: (given: Readonly<Record<string, ReadonlyArray<string>>>) => { readonly value?: unknown; readonly error?: string }
}

export interface CliSpec<O, R extends OperationServices = OperationServices> {
  /** Words after `pyro`: ["workspace", "sync", "push"]. */
  readonly path: ReadonlyArray<string>
  readonly description: string
  /** Fields given as positional arguments; every other input field becomes a `--kebab-case` option. */
  readonly args?: ReadonlyArray<CliArg>
  /** Options whose help text differs from the field's description (keyed by field). */
  readonly optionHelp?: Readonly<Record<string, string>>
  /** Options named otherwise than the field's kebab-case (`output_path` → `output`). */
  readonly optionNames?: Readonly<Record<string, string>>
  /**
   * CLI-only options `--NAME PATH` whose file's text fills a field instead
   * (`--text-file` for `text`): the field's own option becomes optional, and
   * giving both is a usage error.
   */
  readonly fileOptions?: Readonly<Record<string, string>>
  /**
   * Fields the CLI fills from repeatable options of its own, parsed together
   * (`secrets` from `--secret NAME=VALUE` and `--secret-file NAME=PATH`): each
   * option's help by name, and the field's value from what was given (undefined
   * when nothing was), or why that cannot be.
   */
  readonly repeatedOptions?: Readonly<Record<string, RepeatedOptions>>
  /**
   * CLI-only options `--NAME TEXT` that fill an object field the CLI cannot
   * spell as one option (`--ready-tcp` for `readiness`): the field's value is
   * made from the text; at most one of those naming a field may be given.
   */
  readonly choiceOptions?: Readonly<Record<string, {
    readonly field: string
    readonly description: string
    readonly value: (text: string) => unknown
  }>>
  /** Boolean fields that default to true, each turned off by a CLI flag (`append_newline` by `--no-newline`). */
  readonly offFlags?: Readonly<Record<string, string>>
  /** CLI-only flags (name → help) that shape the human output (`--id-only`); the operation never sees them. */
  readonly humanFlags?: Readonly<Record<string, string>>
  /** Human-mode output; `--json` prints the result itself. `flags`: the humanFlags given. */
  readonly human: (result: O, flags: ReadonlySet<string>) => string | HumanOutput
  /** The command's output goes to the terminal as it arrives (human mode only). */
  readonly streamsOutput?: true
  /** The process exit code a result asks for (the guest command's). */
  readonly exitCode?: (result: O) => number
  /** Work done before the operation, for the CLI only (reaping what expired). */
  readonly before?: Effect.Effect<void, never, R>
}

/**
 * `R`: the services its handler uses (all of them unless it says fewer), so that a
 * surface can build only those: the CLI's `pyro run` builds no workspace manager.
 */
export interface Operation<I = any, O = any, M extends string = string, R extends OperationServices = OperationServices> {
  readonly tool: string
  readonly sdkMethod: M
  readonly description: string
  readonly input: Schema.Schema<I, any>
  readonly output: Schema.Schema<O, any>
  readonly annotations: ToolAnnotations
  /**
   * The result carries a command's output. MCP sends it once, as JSON text,
   * without structuredContent (and so without an outputSchema): the output
   * would otherwise travel twice in one message.
   */
  readonly carriesOutput?: true
  /** The SDK method also takes the id alone (`statusWorkspace("ab12...")`) for an input of only this field. */
  readonly sdkShorthand?: string
  readonly handler: (input: I, context: CallContext) => Effect.Effect<O, PyroError, R>
  /** The description once a server knows its project source (`workspace_create` says what it seeds from). */
  readonly describeWith?: (description: string, project: ProjectSourceShape) => string
  readonly cli?: CliSpec<O, R>
}

/** What a server shows a model as the operation's description, given its project source. */
export const describedFor = (op: Operation, project: ProjectSourceShape): string =>
  op.describeWith ? op.describeWith(op.description, project) : op.description

/**
 * Declare an operation; the types of input, output and handler are checked
 * against each other here, and the SDK method's name and input type are kept
 * for the facade's method types.
 */
export const operation = <I, II, O, OI, const M extends string, R extends OperationServices, const S extends string = never>(
  o: Omit<Operation<I, O, M, R>, "input" | "output" | "sdkShorthand"> & {
    readonly input: Schema.Schema<I, II>
    readonly output: Schema.Schema<O, OI>
    readonly sdkShorthand?: S
  }
): Operation<I, O, M, R> & { readonly input: Schema.Schema<I, II>; readonly sdkShorthand?: S } => o

export const hints = (
  title: string,
  readOnly: boolean,
  destructive: boolean,
  idempotent: boolean,
  openWorld = false
): ToolAnnotations => ({ title, readOnlyHint: readOnly, destructiveHint: destructive, idempotentHint: idempotent, openWorldHint: openWorld })

/** Decode `raw` with the operation's input schema (unknown properties refused), then run its handler. */
export const invoke = <I, O>(
  op: Operation<I, O>,
  raw: unknown,
  context: CallContext = {}
): Effect.Effect<O, PyroError, OperationServices> =>
  Effect.flatMap(
    Schema.decodeUnknown(op.input)(raw ?? {}, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => new InvalidInput({ detail: formatInputError(e) }))
    ),
    (input) => op.handler(input, context)
  )

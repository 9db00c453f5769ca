/** The exit code a CLI command asks for (the guest command's, for `run`), read by the entrypoint. */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"

export class ExitCode extends Context.Tag("pyro/cli/ExitCode")<ExitCode, Ref.Ref<number>>() {}

export const setExitCode = (code: number) => Effect.flatMap(ExitCode, (ref) => Ref.set(ref, code))

/** Documented in docs/public-contract.md. */
export const EXIT_RUNTIME_FAILURE = 1
export const EXIT_USAGE = 2
export const EXIT_INTERRUPTED = 130

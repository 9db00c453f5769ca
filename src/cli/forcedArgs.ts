/**
 * Arguments after `--` belong to the guest command, but @effect/cli looks for
 * its built-in options (--version, --help, -h, --wizard, ...) anywhere on the
 * line, so `pyro run debian:12 -- git --version` would print pyro's version.
 * Before parsing, every dash-led argument after `--` is marked; the commands
 * that take a guest command unmark them.
 */
const MARK = "\u0000pyro-arg:"

export const protectForcedArgs = (argv: ReadonlyArray<string>): Array<string> => {
  const split = argv.indexOf("--")
  if (split < 0) return [...argv]
  return [...argv.slice(0, split + 1), ...argv.slice(split + 1).map((a) => (a.startsWith("-") ? MARK + a : a))]
}

export const restoreForcedArg = (arg: string) => (arg.startsWith(MARK) ? arg.slice(MARK.length) : arg)

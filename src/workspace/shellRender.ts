/**
 * A shell's raw output as a terminal would show it (shell_read's `plain`):
 * fed to a headless terminal emulator (xterm.js, the one VS Code's terminal
 * runs) the size of the shell's, so cursor moves, erases, overwrites and
 * backspaces land where they would on screen and colours and other control
 * sequences leave nothing. Every line written is kept (a scrollback as large
 * as any read), each trimmed on the right; trailing empty lines are dropped.
 */
import { Terminal } from "@xterm/headless/lib-headless/xterm-headless.mjs"

/** Lines kept above the screen: more than one read's worth, so nothing scrolls away. */
const SCROLLBACK_LINES = 1_000_000

export const renderPlain = (raw: string, cols: number, rows: number): Promise<string> =>
  new Promise((resolve) => {
    const terminal = new Terminal({ cols, rows, scrollback: SCROLLBACK_LINES, allowProposedApi: true })
    terminal.write(raw, () => {
      const buffer = terminal.buffer.active
      const lines: Array<string> = []
      for (let i = 0; i < buffer.length; i++) {
        const line = buffer.getLine(i)
        if (!line) continue
        const text = line.translateToString(false)
        // A line the terminal wrapped is one line of output, continued.
        if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text
        else lines.push(text)
      }
      terminal.dispose()
      while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop()
      resolve(lines.map((l) => l.trimEnd()).join("\n"))
    })
  })

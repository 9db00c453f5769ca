/**
 * The wire's numbers, mirrored from guest/agent/protocol.h (the reference, with
 * a comment per field). test/protocol/constants.test.ts checks they agree.
 */
/**
 * The newest generation of the wire this host speaks; it offers it in HELLO and
 * the agent answers with the newest both speak. Messages added later are gated
 * on the answer (`requireGeneration` in mux.ts), and each generation's message
 * table is committed as test/protocol/gen-N.json, which the tests hold the
 * constants to: a change to the wire is a new generation, never an edit.
 */
export const PROTOCOL_GENERATION = 4
/**
 * What each generation brought. 2: the agent serves many host channels and is
 * also the `fs` tool (`/proc/1/exe fs ...`) workspace file operations run; an
 * agent of generation 1 would take `fs` for a boot and power its VM off.
 */
export const GENERATION_FILE_TOOL = 2
/**
 * 3: the agent keeps PTY shells (their output buffered in the guest for any
 * client) and runs services that outlive every channel (`/proc/1/exe service`).
 */
export const GENERATION_SHELLS = 3
export const GENERATION_SERVICES = 3
/** 3: also `/proc/1/exe secrets DIR`, which puts a workspace's secrets on a tmpfs after each boot. */
export const GENERATION_SECRETS = 3
/** 4: FREEZE and THAW, the scratch filesystem held still while a workspace snapshot is taken. */
export const GENERATION_FREEZE = 4
/** The longest a freeze lasts before the agent thaws by itself (PYRO_MAX_FREEZE_MS). */
export const MAX_FREEZE_MS = 30_000
/** The oldest agent generation this host still talks to (a workspace VM booted by an older pyro). */
export const MIN_PROTOCOL_GENERATION = 1

export const FRAME_MAGIC = 0x5059
export const FRAME_HEADER_BYTES = 12
export const MAX_FRAME_PAYLOAD_BYTES = 1024 * 1024
export const MAX_NONCE_BYTES = 64
export const FIELD_HEADER_BYTES = 6

export const MessageType = {
  HELLO: 1,
  ATTACH: 2,
  OK: 3,
  ERROR: 4,
  EXEC: 5,
  DATA: 6,
  EOF: 7,
  EXIT: 8,
  SIGNAL: 9,
  PING: 10,
  PONG: 11,
  POWEROFF: 12,
  SYNC: 13,
  REFRESH: 14,
  SHELL_OPEN: 15,
  SHELL_READ: 16,
  SHELL_WRITE: 17,
  SHELL_SIGNAL: 18,
  SHELL_CLOSE: 19,
  SHELL_RESIZE: 20,
  FREEZE: 21,
  THAW: 22
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

export const Fd = { STDIN: 0, STDOUT: 1, STDERR: 2 } as const

export const FieldKey = {
  GENERATION: 1,
  NONCE: 2,
  STATE: 3,
  UPTIME_NS: 4,
  AGENT_VERSION: 5,
  MODULES_NS: 6,
  ROOT_NS: 7,
  ARG: 10,
  ENV: 11,
  CWD: 12,
  TIMEOUT_MS: 13,
  STDIN: 14,
  EXIT_CODE: 20,
  SIGNAL: 21,
  TIMED_OUT: 22,
  ERRNO: 23,
  MESSAGE: 24,
  STAGE: 25,
  PID: 26,
  SCRATCH_SERIAL: 30,
  REALTIME_NS: 31,
  ENTROPY: 32,
  HOSTNAME: 33,
  SHELL_ID: 40,
  COLS: 41,
  ROWS: 42,
  CURSOR: 43,
  MAX_BYTES: 44,
  WAIT_IDLE_MS: 45,
  INPUT: 46,
  OUTPUT: 47,
  NEXT_CURSOR: 48,
  FIRST_CURSOR: 49,
  END_CURSOR: 50,
  SHELL_STATE: 51,
  STARTED_MS: 52,
  ENDED_MS: 53,
  INPUT_BYTES: 54
} as const

/** Shells the agent keeps at once (a VM's, over every channel). */
export const MAX_SHELLS = 16
/** Each shell's output the agent holds: its newest bytes. */
export const SHELL_RING_BYTES = 1024 * 1024
/** The most one SHELL_READ answers with. */
export const SHELL_READ_MAX_BYTES = 512 * 1024
/** The largest cols or rows the agent takes. */
export const SHELL_MAX_SIZE = 1000
/** A read waiting for the shell to go quiet is answered after this long regardless. */
export const SHELL_WAIT_CAP_MS = 30_000

/** The agent serves every virtio-serial port named PORT_PREFIX + N, each its own connection. */
export const PORT_PREFIX = "org.pyro.channel."
export const portName = (channel: number) => `${PORT_PREFIX}${channel}`
export const PORT_NAME = portName(0)
export const ROOT_SERIAL = "pyro-root"

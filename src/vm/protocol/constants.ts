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
export const PROTOCOL_GENERATION = 3
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
  REFRESH: 14
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
  HOSTNAME: 33
} as const

/** The agent serves every virtio-serial port named PORT_PREFIX + N, each its own connection. */
export const PORT_PREFIX = "org.pyro.channel."
export const portName = (channel: number) => `${PORT_PREFIX}${channel}`
export const PORT_NAME = portName(0)
export const ROOT_SERIAL = "pyro-root"

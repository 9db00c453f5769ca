/*
 * The wire between the host and the guest agent: one framed, multiplexed byte
 * stream. src/vm/protocol/constants.ts mirrors every number here, and
 * test/protocol/constants.test.ts checks that the two agree.
 * Every integer on the wire is big-endian.
 */
#ifndef PYRO_PROTOCOL_H
#define PYRO_PROTOCOL_H

/* Bumped when a message or field changes meaning. HELLO carries it and both
 * sides use the lower of the two; new fields are optional. */
#define PYRO_PROTOCOL_GENERATION 4

/*
 * Frame header, PYRO_FRAME_HEADER_BYTES bytes:
 *   offset 0  u16 magic   PYRO_FRAME_MAGIC ("PY")
 *   offset 2  u8  type    PYRO_MSG_*
 *   offset 3  u8  flags   DATA and EOF: the stream's fd (PYRO_FD_*); else 0
 *   offset 4  u32 stream  0 for the connection itself; requests use ids > 0
 *                         chosen by the host, unique while the stream is open
 *   offset 8  u32 length  payload bytes after the header
 * A frame whose magic is wrong or whose length exceeds
 * PYRO_MAX_FRAME_PAYLOAD_BYTES is malformed: the receiver stops reading the
 * connection (the host closes it; the agent discards input until the host
 * reconnects).
 */
#define PYRO_FRAME_MAGIC 0x5059u
#define PYRO_FRAME_HEADER_BYTES 12u
#define PYRO_MAX_FRAME_PAYLOAD_BYTES (1024u * 1024u)

/* Message types. "->" is host to guest, "<-" guest to host. */
#define PYRO_MSG_HELLO 1    /* <-> stream 0: generation, nonce; reply adds state, timings */
#define PYRO_MSG_ATTACH 2   /* ->  scratch serial, clock, entropy, hostname; reply OK */
#define PYRO_MSG_OK 3       /* <-  success reply to a request; ends the stream */
#define PYRO_MSG_ERROR 4    /* <-  failure (errno, stage, message); ends the stream.
                               On stream 0: the connection is unusable. */
#define PYRO_MSG_EXEC 5     /* ->  argv, env, cwd, timeout, stdin; opens an exec stream */
#define PYRO_MSG_DATA 6     /* <-> raw bytes for fd `flags` of the stream */
#define PYRO_MSG_EOF 7      /* <-> fd `flags` of the stream is closed */
#define PYRO_MSG_EXIT 8     /* <-  exec finished: exit code, signal, timed out; ends the stream */
#define PYRO_MSG_SIGNAL 9   /* ->  deliver a signal to the exec's process group */
#define PYRO_MSG_PING 10    /* ->  payload is echoed back raw in PONG */
#define PYRO_MSG_PONG 11    /* <-  */
#define PYRO_MSG_POWEROFF 12 /* -> flush disks and power off; reply OK first */
#define PYRO_MSG_SYNC 13    /* ->  flush disks; reply OK */
#define PYRO_MSG_REFRESH 14 /* ->  clock, entropy, hostname of an attached VM (a restored
                               clone of an attached template); reply OK */
/*
 * PTY shells (generation 3, shell.c). A shell belongs to the agent, not to the
 * channel that opened it: it outlives that host, and any channel may use it
 * by its id. Every reply is OK with the shell's facts (SHELL_ID, CWD, COLS,
 * ROWS, SHELL_STATE, STARTED_MS, and once stopped ENDED_MS, EXIT_CODE, SIGNAL)
 * plus what the request adds, or ERROR with STAGE "shell" (ENOENT: no such
 * shell; EEXIST: id in use; EMFILE: PYRO_MAX_SHELLS open; EPIPE: it has
 * stopped; EAGAIN: its input backlog is full; ERANGE: cursor past the end;
 * EALREADY: being closed;
 * EBUSY: too many reads waiting; EINVAL: bad fields) or the spawn's stage.
 */
#define PYRO_MSG_SHELL_OPEN 15   /* ->  id, argv (default bash -i, else sh -i), env, cwd, cols, rows */
#define PYRO_MSG_SHELL_READ 16   /* ->  id, cursor, max bytes, wait-idle ms; reply adds CURSOR
                                    (where OUTPUT starts), OUTPUT, NEXT_CURSOR, FIRST_CURSOR, END_CURSOR */
#define PYRO_MSG_SHELL_WRITE 17  /* ->  id, input bytes for the terminal; reply adds INPUT_BYTES */
#define PYRO_MSG_SHELL_SIGNAL 18 /* ->  id, signal: HUP, INT, TERM or KILL */
#define PYRO_MSG_SHELL_CLOSE 19  /* ->  id; HUP, KILL after 1 s; replies once stopped, then forgets it */
#define PYRO_MSG_SHELL_RESIZE 20 /* ->  id, cols, rows */
/*
 * Snapshots (generation 4, attach.c): the scratch filesystem synced and frozen
 * while the host takes its disk, then thawed. A freeze ends by THAW, by the end
 * of the connection that asked for it, or at TIMEOUT_MS (at most
 * PYRO_MAX_FREEZE_MS), whichever comes first, so a host that dies mid-snapshot
 * never leaves the guest's writers blocked. ERROR with STAGE "freeze": EBUSY
 * already frozen, ENODEV not attached.
 */
#define PYRO_MSG_FREEZE 21 /* ->  timeout ms; reply OK once frozen */
#define PYRO_MSG_THAW 22   /* ->  reply OK once thawed (also when it was not frozen) */
#define PYRO_MAX_FREEZE_MS 30000

#define PYRO_FD_STDIN 0
#define PYRO_FD_STDOUT 1
#define PYRO_FD_STDERR 2

/*
 * Payload of every message except DATA and PING/PONG: a list of fields, each
 *   u16 key, u32 length, value[length]
 * Integers are i64 (length 8). Strings are bytes without a NUL. A key may repeat
 * where noted; unknown keys are ignored.
 */
#define PYRO_F_GENERATION 1      /* i64 */
#define PYRO_F_NONCE 2           /* bytes, <= PYRO_MAX_NONCE_BYTES */
#define PYRO_F_STATE 3           /* string: "ready" (before attach) or "attached" */
#define PYRO_F_UPTIME_NS 4       /* i64, CLOCK_BOOTTIME when the reply was made */
#define PYRO_F_AGENT_VERSION 5   /* string */
#define PYRO_F_MODULES_NS 6      /* i64, CLOCK_BOOTTIME when modules were loaded */
#define PYRO_F_ROOT_NS 7         /* i64, CLOCK_BOOTTIME when the root was mounted */
#define PYRO_F_ARG 10            /* string, repeated: argv in order */
#define PYRO_F_ENV 11            /* string "KEY=VALUE", repeated */
#define PYRO_F_CWD 12            /* string */
#define PYRO_F_TIMEOUT_MS 13     /* i64, 0 = no limit; the agent kills the group at the deadline */
#define PYRO_F_STDIN 14          /* i64 boolean: the host will send stdin; otherwise /dev/null */
#define PYRO_F_EXIT_CODE 20      /* i64 */
#define PYRO_F_SIGNAL 21         /* i64, signal number, 0 = none */
#define PYRO_F_TIMED_OUT 22      /* i64 boolean */
#define PYRO_F_ERRNO 23          /* i64 */
#define PYRO_F_MESSAGE 24        /* string */
#define PYRO_F_STAGE 25          /* string: where an ERROR arose ("exec", "chdir", "attach", ...) */
#define PYRO_F_PID 26            /* i64 */
#define PYRO_F_SCRATCH_SERIAL 30 /* string, virtio-blk serial of the scratch disk */
#define PYRO_F_REALTIME_NS 31    /* i64, host wall clock in ns since the epoch */
#define PYRO_F_ENTROPY 32        /* bytes, mixed into the guest pool and credited */
#define PYRO_F_HOSTNAME 33       /* string */
/* Shells (generation 3). Cursors are absolute byte offsets into a shell's
 * output since it opened; the agent holds the last PYRO_SHELL_RING_BYTES. */
#define PYRO_F_SHELL_ID 40       /* string [0-9a-f]{1,32}, chosen by the host */
#define PYRO_F_COLS 41           /* i64 1..PYRO_SHELL_MAX_SIZE */
#define PYRO_F_ROWS 42           /* i64 1..PYRO_SHELL_MAX_SIZE */
#define PYRO_F_CURSOR 43         /* i64 >= 0: request, read from here; reply, where OUTPUT starts */
#define PYRO_F_MAX_BYTES 44      /* i64 >= 0, at most PYRO_SHELL_READ_MAX_BYTES are returned */
#define PYRO_F_WAIT_IDLE_MS 45   /* i64 >= 0: answer once the shell has been quiet this long (0: now) */
#define PYRO_F_INPUT 46          /* bytes for the terminal */
#define PYRO_F_OUTPUT 47         /* bytes of output */
#define PYRO_F_NEXT_CURSOR 48    /* i64, CURSOR + the length of OUTPUT */
#define PYRO_F_FIRST_CURSOR 49   /* i64, the oldest byte still held */
#define PYRO_F_END_CURSOR 50     /* i64, every byte the shell has written so far */
#define PYRO_F_SHELL_STATE 51    /* string "running" or "stopped" */
#define PYRO_F_STARTED_MS 52     /* i64, guest CLOCK_REALTIME ms when it started */
#define PYRO_F_ENDED_MS 53       /* i64, guest CLOCK_REALTIME ms when it stopped (stopped only) */
#define PYRO_F_INPUT_BYTES 54    /* i64, bytes of INPUT taken */

#define PYRO_MAX_NONCE_BYTES 64u
#define PYRO_MAX_SHELLS 16
#define PYRO_SHELL_RING_BYTES (1024u * 1024u)
#define PYRO_SHELL_READ_MAX_BYTES (512u * 1024u)
#define PYRO_SHELL_MAX_SIZE 1000
/* A waiting read answers after this long however busy the shell is. */
#define PYRO_SHELL_WAIT_CAP_MS 30000

/* The agent serves every virtio-serial port whose name starts with this, each
 * an independent connection with its own streams; the host's channel N is
 * PYRO_PORT_PREFIX "N". Channel 0 is always there. */
#define PYRO_PORT_PREFIX "org.pyro.channel."
#define PYRO_PORT_NAME "org.pyro.channel.0"
/* virtio-blk serial of the read-only environment root. */
#define PYRO_ROOT_SERIAL "pyro-root"

#endif

// Completion kinds this backend puts in user_data (0..239 are ours to choose).
export const Kind = {
  ACCEPT: 1, RECV: 2, SEND: 3, POLLOUT: 4, CLOSE: 5, CANCEL: 6, SHUTDOWN: 7, TIMER: 8,
  CONNECT: 9, UDP_RECV: 10, UDP_SEND: 11, LISTENER_CLOSE: 12, TICK: 13,
} as const

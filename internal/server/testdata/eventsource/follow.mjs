// follow.mjs URL: follows a run's event stream with npm's `eventsource`, a
// standard (WHATWG) EventSource, and prints what it sees, one line each:
//   request LAST_EVENT_ID | response STATUS | end DATA | error READY_STATE | closed
// It exits 0 once the EventSource has closed for good, and 1 on a second
// `end` (the client was made to reconnect after the end). The token comes
// from ZOF_TOKEN, as it would in CI.
import { EventSource } from "eventsource";

const [url] = process.argv.slice(2);
const token = process.env.ZOF_TOKEN;
let ends = 0;

const es = new EventSource(url, {
  fetch: async (input, init) => {
    console.log(`request ${init.headers["Last-Event-ID"] ?? ""}`);
    const res = await fetch(input, {
      ...init,
      headers: { ...init.headers, Authorization: `Bearer ${token}` },
    });
    console.log(`response ${res.status}`);
    return res;
  },
});

es.addEventListener("end", (ev) => {
  ends++;
  console.log(`end ${ev.data}`);
  if (ends > 1) {
    console.log("end again: the client reconnected after the end");
    process.exit(1);
  }
});

es.addEventListener("error", () => {
  console.log(`error ${es.readyState}`);
  if (es.readyState === EventSource.CLOSED) {
    console.log("closed");
    process.exit(0);
  }
});

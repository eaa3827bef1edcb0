package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/zof-ai/zof-ci/internal/engine/pgstore/pgtest"
)

// A script's own PostgreSQL server, which it may stop and start (a database
// restart mid-run): never the shared server of ZOF_TEST_POSTGRES_URL, which
// other tests use at the same time. .ci/postgres.sh exports where its binaries
// are and the user that may run them (initdb refuses root).
const (
	envPGBin  = "ZOF_TEST_PG_BIN"  // the directory of initdb and pg_ctl
	envPGUser = "ZOF_TEST_PG_USER" // the user that runs them when the tests run as root
	// pgStartTimeout bounds pg_ctl start and stop (-t): a cluster on a busy 2-core
	// machine starts in about a second.
	pgStartTimeout = 60
)

type pgclusterKey struct{}

// scriptPG is a script's own PostgreSQL cluster.
type scriptPG struct {
	bin, user, dir string
	port           int
}

// pgBinDir finds initdb and pg_ctl: ZOF_TEST_PG_BIN, then PATH, then Debian's
// /usr/lib/postgresql/*/bin (the postgresql package does not put them on PATH).
func pgBinDir() (string, bool) {
	ok := func(d string) bool {
		for _, b := range []string{"initdb", "pg_ctl"} {
			if fi, err := os.Stat(filepath.Join(d, b)); err != nil || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(envPGBin); d != "" {
		return d, ok(d)
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil && ok(filepath.Dir(p)) {
			return filepath.Dir(p), true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- { // the newest version first
		if ok(dirs[i]) {
			return dirs[i], true
		}
	}
	return "", false
}

// pgclusterCondition is [pgcluster]: a script can run a PostgreSQL server of its
// own. Without the binaries it is false (the script skips) unless CI or
// ZOF_REQUIRE_POSTGRES is set: then the script fails.
func pgclusterCondition() (bool, error) {
	if _, ok := pgBinDir(); ok {
		return true, nil
	}
	if pgtest.Required(os.Getenv) {
		return false, fmt.Errorf("no initdb/pg_ctl (%s, PATH, /usr/lib/postgresql/*/bin) and CI or %s is set: the database restart script must run here; run .ci/run, which installs Debian's postgresql package (.ci/postgres.sh)", envPGBin, pgtest.EnvRequire)
	}
	return false, nil
}

// pgcluster drives the script's own PostgreSQL server:
//
//	pgcluster init VAR   initdb in a temporary directory, start it on a free port and
//	                     set VAR to a postgres:// URL of it (stopped and removed when
//	                     the script ends)
//	pgcluster stop       stop it (fast: clients are disconnected, as in a restart)
//	pgcluster down D     keep it stopped D longer (a Go duration): the outage's length
//	                     is what is under test, not a wait for something to happen
//	pgcluster start      start it again on the same port and data
func pgcluster(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: pgcluster init VAR | stop | down DURATION | start")
	}
	h := ts.Value(pgclusterKey{}).(*scriptPG)
	if args[0] != "init" && h.dir == "" {
		ts.Fatalf("pgcluster %s: no cluster; pgcluster init first", args[0])
	}
	switch args[0] {
	case "init":
		if len(args) != 2 || h.dir != "" {
			ts.Fatalf("usage: pgcluster init VAR (once)")
		}
		pgInit(ts, h)
		ts.Setenv(args[1], fmt.Sprintf("postgres://zof@127.0.0.1:%d/postgres?sslmode=disable", h.port))
	case "stop":
		h.ctl(ts, "-m", "fast", "-w", "-t", strconv.Itoa(pgStartTimeout), "stop")
	case "down":
		if len(args) != 2 {
			ts.Fatalf("usage: pgcluster down DURATION")
		}
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		time.Sleep(d)
	case "start":
		h.start(ts)
		ts.Logf("PostgreSQL started again at %s", time.Now().UTC().Format(time.RFC3339Nano))
	default:
		ts.Fatalf("pgcluster: unknown %q", args[0])
	}
}

func pgInit(ts *testscript.TestScript, h *scriptPG) {
	bin, ok := pgBinDir()
	if !ok {
		ts.Fatalf("no initdb/pg_ctl: guard the script with [!pgcluster] skip")
	}
	h.bin = bin
	h.user = os.Getenv(envPGUser)
	if h.user == "" && os.Geteuid() == 0 {
		h.user = "postgres" // Debian's package makes it; .ci/postgres.sh too
	}
	// Not under $WORK: the server's user must reach its directory.
	dir, err := os.MkdirTemp("", "zof-pgcluster-")
	ts.Check(err)
	h.dir = dir
	ts.Defer(func() {
		if _, err := os.Stat(filepath.Join(h.dir, "data", "postmaster.pid")); err == nil {
			_ = h.run("pg_ctl", "-D", filepath.Join(h.dir, "data"), "-m", "immediate", "-w", "stop")
		}
		os.RemoveAll(h.dir)
	})
	if h.user != "" {
		u, err := user.Lookup(h.user)
		if err != nil {
			ts.Fatalf("the PostgreSQL user %q: %v; set %s to a user that may run initdb", h.user, err, envPGUser)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		ts.Check(os.Chown(dir, uid, gid))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	h.port = l.Addr().(*net.TCPAddr).Port
	ts.Check(l.Close())
	if err := h.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "zof", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		ts.Fatalf("initdb: %v", err)
	}
	h.start(ts)
}

func (h *scriptPG) start(ts *testscript.TestScript) {
	h.ctl(ts, "-l", filepath.Join(h.dir, "server.log"), "-w", "-t", strconv.Itoa(pgStartTimeout),
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", h.port, h.dir), "start")
	// pg_ctl -w returns once the server accepts connections; prove it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://zof@127.0.0.1:%d/postgres?sslmode=disable", h.port))
	if err != nil {
		ts.Fatalf("the script's PostgreSQL does not answer after pg_ctl start: %v", err)
	}
	c.Close(ctx)
}

func (h *scriptPG) ctl(ts *testscript.TestScript, args ...string) {
	if err := h.run("pg_ctl", append([]string{"-D", filepath.Join(h.dir, "data")}, args...)...); err != nil {
		log, _ := os.ReadFile(filepath.Join(h.dir, "server.log"))
		ts.Fatalf("pg_ctl %v: %v\nserver.log:\n%s", args, err, log)
	}
}

// run runs one of the server's programs as its user (runuser when the tests
// run as root: initdb and postgres refuse root).
func (h *scriptPG) run(prog string, args ...string) error {
	name, argv := filepath.Join(h.bin, prog), args
	if cur, err := user.Current(); h.user != "" && (err != nil || cur.Username != h.user) {
		name, argv = "runuser", append([]string{"-u", h.user, "--", name}, args...)
	}
	out, err := exec.Command(name, argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

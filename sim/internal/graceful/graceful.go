// Package graceful stops gitopsim's HTTP servers without letting one
// stuck connection hold a process open: a Stop that waits forever for a
// request in flight turns a clean shutdown into a hang.
package graceful

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Grace is how long Shutdown lets requests in flight finish.
const Grace = 5 * time.Second

// Shutdown stops srv: its listeners close at once, requests in flight get
// up to grace (or until ctx ends) to finish, then every connection left is
// closed and a warning names the server. Only errors other than running
// out of time are returned.
func Shutdown(ctx context.Context, srv *http.Server, grace time.Duration, log *slog.Logger) error {
	sctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err == nil || !errors.Is(err, sctx.Err()) {
		return err
	}
	log.Warn("requests still in flight at shutdown; closing their connections", "waited", grace)
	return srv.Close()
}

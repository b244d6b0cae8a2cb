package arm_test

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// waitHeld polls until cond holds while the disk is held; on timeout it
// lets the disk go, so the server can stop, and fails.
func waitHeld(t *testing.T, release func(error), what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			release(nil)
			t.Fatal(what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// TestGroupCommit: while the disk is slow, changes are made without
// waiting for each other's writes, none is acknowledged or read before it
// is written, and the changes that queued meanwhile are written together.
func TestGroupCommit(t *testing.T) {
	f := start(t, arm.Options{StateDir: filepath.Join(t.TempDir(), "state"), TokenLifetime: 1000 * time.Hour})
	ctx := t.Context()
	f.group("rg0") // the SDK's first call, and its token, before the disk stalls
	_, writesBefore := arm.DurableCounts(f.srv)
	changesBefore, _ := arm.DurableCounts(f.srv)

	release := arm.HoldDisk(f.srv)
	const n = 8
	var wg sync.WaitGroup
	acked := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("rg%d", i+1)
			if _, err := f.groups.CreateOrUpdate(ctx, name, armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
				t.Errorf("create %s: %v", name, err)
			}
			acked <- name
		})
	}
	// Every change is made in memory and waits for the disk.
	waitHeld(t, release, "the changes did not reach the store", func() bool {
		changes, _ := arm.DurableCounts(f.srv)
		return changes == changesBefore+n
	})
	// A read of a change not yet on disk waits for it, so nobody acts
	// on what a crash would lose.
	read := make(chan error, 1)
	go func() {
		_, err := f.groups.Get(ctx, "rg1", nil)
		read <- err
	}()
	// n-1 changes and the read wait; the first change is being written.
	waitHeld(t, release, "the read did not arrive", func() bool { return arm.Waiting(f.srv) >= n })
	select {
	case name := <-acked:
		t.Errorf("%s was acknowledged before it was written", name)
	case err := <-read:
		t.Errorf("a change was read before it was written (%v)", err)
	default:
	}
	release(nil)
	wg.Wait()
	if err := <-read; err != nil {
		t.Errorf("the read once the change is on disk: %v", err)
	}
	if _, writes := arm.DurableCounts(f.srv); writes-writesBefore > 2 {
		t.Errorf("%d changes that waited together took %d writes, want at most 2 (the one under way and one for the rest)", n, writes-writesBefore)
	}
}

// TestReadAcrossAFailedWrite: a read that saw a change whose write then
// failed answers 503, not what was undone; the change answers 500.
func TestReadAcrossAFailedWrite(t *testing.T) {
	f := start(t, arm.Options{StateDir: filepath.Join(t.TempDir(), "state"), TokenLifetime: 1000 * time.Hour})
	f.group("rg0")
	release := arm.HoldDisk(f.srv)
	rg := f.srv.URL() + "/subscriptions/" + f.srv.SubscriptionID() + "/resourcegroups/undone?api-version=2021-04-01"
	put := make(chan int, 1)
	go func() {
		// Raw, since the SDK would retry the 500.
		code, _ := f.raw(http.MethodPut, rg, f.token(), `{"location":"eastus"}`)
		put <- code
	}()
	waitHeld(t, release, "the change did not reach the store", func() bool {
		changes, _ := arm.DurableCounts(f.srv)
		return changes >= 2
	})
	status := make(chan int, 1)
	go func() {
		code, _ := f.raw(http.MethodGet, rg, f.token(), "")
		status <- code
	}()
	waitHeld(t, release, "the read did not wait", func() bool { return arm.Waiting(f.srv) >= 1 })
	release(errors.New("injected write failure"))
	if code := <-status; code != http.StatusServiceUnavailable {
		t.Errorf("a read that saw the undone change: %d, want 503", code)
	}
	if code := <-put; code != http.StatusInternalServerError {
		t.Errorf("the undone change: %d, want 500", code)
	}
	if code, _ := f.raw(http.MethodGet, rg, f.token(), ""); code != http.StatusNotFound {
		t.Errorf("the undone change read afterwards: %d, want 404", code)
	}
}

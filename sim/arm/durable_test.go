package arm_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/gitopsim/gitopsim/sim/arm"
)

// TestGroupCommit: while the disk is slow, changes wait for it without
// holding up reads, none is acknowledged before it is written, and the
// changes that queued meanwhile are written together.
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
	for deadline := time.Now().Add(30 * time.Second); ; {
		if changes, _ := arm.DurableCounts(f.srv); changes == changesBefore+n {
			break
		}
		if time.Now().After(deadline) {
			release()
			t.Fatal("the changes did not reach the store")
		}
		<-time.After(5 * time.Millisecond)
	}
	// A read is answered meanwhile; before group commit it queued behind
	// the write holding the store lock.
	if _, err := f.groups.Get(ctx, "rg0", nil); err != nil {
		t.Errorf("a read while the disk is slow: %v", err)
	}
	select {
	case name := <-acked:
		t.Errorf("%s was acknowledged before it was written", name)
	default:
	}
	release()
	wg.Wait()
	if _, writes := arm.DurableCounts(f.srv); writes-writesBefore > 2 {
		t.Errorf("%d changes that waited together took %d writes, want at most 2 (the one under way and one for the rest)", n, writes-writesBefore)
	}
}

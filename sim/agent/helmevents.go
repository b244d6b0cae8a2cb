package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/gitopsim/gitopsim/sim/clock"
)

// maxEventCache is the size of client-go's event correlation cache.
const maxEventCache = 4096

// eventRecorder records core/v1 Events the way client-go's
// record.EventRecorder does for helm-operator (pkg/operator/operator.go:
// source component "helm-operator"): a new Event named
// <object>.<timestamp in hex>, and for a repeat of the same event from the
// same process its count and lastTimestamp patched. It is synchronous and
// stamps events with the simulation clock, so kubectl describe shows them
// in gitopsim time. client-go's spam filter and aggregation of many
// similar events are not simulated.
type eventRecorder struct {
	kube      kubernetes.Interface
	clk       clock.Clock
	component string
	log       *slog.Logger

	mu   sync.Mutex
	seen map[string]*corev1.Event
}

func newEventRecorder(kube kubernetes.Interface, clk clock.Clock, component string, log *slog.Logger) *eventRecorder {
	return &eventRecorder{kube: kube, clk: clk, component: component, log: log, seen: map[string]*corev1.Event{}}
}

// record writes an Event about obj; failures are logged, as the
// broadcaster does.
func (r *eventRecorder) record(ctx context.Context, obj *unstructured.Unstructured, typ, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := corev1.ObjectReference{
		Kind: obj.GetKind(), APIVersion: obj.GetAPIVersion(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
		UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
	}
	key := strings.Join([]string{r.component, ref.Kind, ref.Namespace, ref.Name, string(ref.UID), ref.APIVersion, typ, reason, message}, "\x00")
	now := metav1.NewTime(r.clk.Now())
	events := r.kube.CoreV1().Events(ref.Namespace)
	if len(r.seen) >= maxEventCache {
		// client-go keeps an LRU cache of this size; forgetting all at
		// once only means the next repeats start new Events.
		clear(r.seen)
	}
	if prev, ok := r.seen[key]; ok {
		patch, _ := json.Marshal(map[string]any{"count": prev.Count + 1, "lastTimestamp": now, "message": message})
		ev, err := events.Patch(ctx, prev.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			r.seen[key] = ev
			return
		}
		if !apierrors.IsNotFound(err) {
			r.log.Warn("patch event", "event", prev.Name, "err", err)
			return
		}
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ref.Namespace},
		InvolvedObject: ref, Reason: reason, Message: message, Type: typ,
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source:              corev1.EventSource{Component: r.component},
		ReportingController: r.component,
	}
	for i := int64(0); i < 100; i++ {
		// Names are unique by the clock's nanoseconds; a virtual clock
		// stands still within a run, so collisions move on a nanosecond.
		ev.Name = fmt.Sprintf("%v.%x", ref.Name, now.UnixNano()+i)
		created, err := events.Create(ctx, ev, metav1.CreateOptions{})
		if err == nil {
			r.seen[key] = created
			return
		}
		if !apierrors.IsAlreadyExists(err) {
			r.log.Warn("create event", "reason", reason, "object", ref.Namespace+"/"+ref.Name, "err", err)
			return
		}
	}
}

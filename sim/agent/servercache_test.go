package agent

import (
	"crypto/sha256"
	"testing"

	"k8s.io/kubectl/pkg/util/openapi"
)

// TestServerCacheSharesDocuments keeps one parsed copy of a document that
// several API servers serve, and drops a copy once no server serves it.
func TestServerCacheSharesDocuments(t *testing.T) {
	c := NewServerCache()
	docA, docB := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	parsedA1, parsedA2, parsedB := &memoResources{}, &memoResources{}, &memoResources{}
	if got := c.setOpenAPI("https://one/openapi/v2", `"a"`, docA, parsedA1); got != openapi.Resources(parsedA1) {
		t.Fatal("the first parse of a document is not the one kept")
	}
	if res, ok := c.parsedDoc(docA); !ok || res != openapi.Resources(parsedA1) {
		t.Fatal("a second server does not find the document the first one sent")
	}
	if got := c.setOpenAPI("https://two/openapi/v2", `"a"`, docA, parsedA2); got != openapi.Resources(parsedA1) {
		t.Error("two servers with one document hold two parsed copies")
	}
	if len(c.docs) != 1 {
		t.Errorf("%d documents cached, want 1", len(c.docs))
	}
	c.setOpenAPI("https://one/openapi/v2", `"b"`, docB, parsedB)
	if len(c.docs) != 2 {
		t.Errorf("%d documents cached after one server changed, want 2", len(c.docs))
	}
	c.setOpenAPI("https://two/openapi/v2", `"b"`, docB, parsedB)
	if _, ok := c.parsedDoc(docA); ok || len(c.docs) != 1 {
		t.Errorf("a document no server serves is kept (%d cached)", len(c.docs))
	}
	if c.openAPI["https://two/openapi/v2"].res != openapi.Resources(parsedB) {
		t.Error("a server's entry does not follow its new document")
	}
}

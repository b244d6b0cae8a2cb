package scenario

import (
	"context"
	"errors"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// sdkCall runs a call of an official Azure SDK client and checks its
// answer against a step's expectation as armCall does: the status and
// body come from the HTTP response the client received, whether it
// succeeded or returned an *azcore.ResponseError. Other errors (no
// answer at all) fail the step.
func (r *run) sdkCall(method, path string, want ARMStatus, call func(ctx context.Context) error) (string, []byte, error) {
	var resp *http.Response
	err := call(runtime.WithCaptureResponse(r.ctx, &resp))
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		resp = re.RawResponse
	} else if err != nil {
		return "", nil, failf("%s %s: %v", method, path, err)
	}
	if resp == nil {
		return "", nil, failf("%s %s: the client returned no response", method, path)
	}
	body, perr := runtime.Payload(resp)
	if perr != nil {
		return "", nil, failf("%s %s: reading the answer: %v", method, path, perr)
	}
	detail, err := judgeARM(method, path, resp.StatusCode, body, want)
	return detail, body, err
}

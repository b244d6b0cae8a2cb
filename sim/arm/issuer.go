package arm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitopsim/gitopsim/sim/internal/atomicfile"
)

// armAudiences are the audiences real ARM accepts in a token; the
// simulator's own URL is accepted too, for clients that use it as Audience.
var armAudiences = []string{
	"https://management.core.windows.net/", "https://management.core.windows.net",
	"https://management.azure.com/", "https://management.azure.com",
}

// issuer is a minimal Entra ID for one tenant: OIDC discovery and the v2
// token endpoint with the client-credentials grant. Tokens are ES256 JWTs
// whose expiry is on the simulator's clock.
type issuer struct {
	s   *Server
	key *ecdsa.PrivateKey

	// verified remembers tokens whose signature, issuer and audience
	// checked out, so that a client reusing its token (as the SDK does for
	// an hour) costs a map lookup and an expiry check, not an ECDSA verify.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	who *principal
	exp time.Time
}

// maxVerified bounds the cache; when full it starts over.
const maxVerified = 4096

// loadOrCreateKey keeps the signing key in the work dir so tokens stay
// valid across a restart.
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("issuer key %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("issuer key %s: %w", path, err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("issuer key %s: %T, want ECDSA", path, k)
		}
		return ek, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	if err := atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// issuerURL is the token issuer for the tenant; MSAL checks that it shares
// scheme and host:port with the authority, so it lives on this server.
func (i *issuer) issuerURL() string { return i.s.URL() + "/" + i.s.opts.TenantID + "/v2.0" }

func (i *issuer) tenantMatches(t string) bool { return strings.EqualFold(t, i.s.opts.TenantID) }

func (i *issuer) discovery(c *call) *Error {
	t := c.vars["tenant"]
	if !i.tenantMatches(t) {
		return oauthError(http.StatusBadRequest, CodeInvalidRequestOAuth, fmt.Sprintf("AADSTS90002: Tenant '%s' not found. This may happen if there are no active subscriptions for the tenant.", t))
	}
	base := i.s.URL() + "/" + t
	writeJSON(c.w, http.StatusOK, i.discoveryDoc(base+"/oauth2/v2.0", base+"/discovery/v2.0/keys"))
	return nil
}

// adfsDiscovery serves the same issuer as an ADFS authority
// (<base>/adfs). MSAL Python, and so the Azure CLI, asks
// login.microsoftonline.com to validate every authority it does not know,
// which fails offline, but trusts an authority whose path is /adfs without
// asking anyone (msal/authority.py: is_adfs skips instance discovery).
// MSAL reads the tenant from the first path segment of token_endpoint and
// later versions check that the discovered issuer shares the authority's
// scheme and host, which i.issuerURL() does.
func (i *issuer) adfsDiscovery(c *call) *Error {
	base := i.s.URL() + "/adfs"
	writeJSON(c.w, http.StatusOK, i.discoveryDoc(base+"/oauth2", base+"/discovery/keys"))
	return nil
}

// discoveryDoc is the OpenID configuration for endpoints under oauth (the
// authorize and token URLs) and the key set at jwks. Both doors issue the
// same tokens, so both name the same issuer.
func (i *issuer) discoveryDoc(oauth, jwks string) map[string]any {
	return map[string]any{
		"token_endpoint":                        oauth + "/token",
		"authorization_endpoint":                oauth + "/authorize",
		"issuer":                                i.issuerURL(),
		"jwks_uri":                              jwks,
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"grant_types_supported":                 []string{"client_credentials"},
		"tenant_region_scope":                   "NA",
	}
}

func (i *issuer) keys(c *call) *Error {
	pub := i.key.PublicKey
	writeJSON(c.w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": i.kid(),
		"x": b64(pub.X, 32), "y": b64(pub.Y, 32),
	}}})
	return nil
}

func b64(n *big.Int, size int) string {
	b := make([]byte, size)
	return base64.RawURLEncoding.EncodeToString(n.FillBytes(b))
}

func (i *issuer) kid() string { return "gitopsim-" + b64(i.key.PublicKey.X, 32)[:8] }

// token serves the client-credentials grant, for both doors. Form fields
// it does not need are ignored, as Entra ID ignores them: MSAL Python adds
// client_info=1 and claims={"access_token":{"xms_cc":...}} (the client's
// CAE capability).
func (i *issuer) token(c *call) *Error {
	r := c.r
	// The ADFS door (/adfs/oauth2/token) has no tenant in its path: ADFS
	// serves one directory, as this issuer does.
	if t, ok := c.vars["tenant"]; ok && !i.tenantMatches(t) {
		return oauthError(http.StatusBadRequest, CodeInvalidRequestOAuth, fmt.Sprintf("AADSTS90002: Tenant '%s' not found.", t))
	}
	if err := r.ParseForm(); err != nil {
		return oauthError(http.StatusBadRequest, CodeInvalidRequestOAuth, "AADSTS900144: The request body must be form-encoded.")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		return oauthError(http.StatusBadRequest, CodeUnsupportedGrantType, fmt.Sprintf("AADSTS70003: The app requested an unsupported grant type '%s'; only client_credentials is supported.", gt))
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		id, secret = bid, bsecret
	}
	if id != i.s.opts.ClientID {
		// Entra ID names the identifier it could not find; a secret passed
		// as the client id by mistake is not repeated back.
		shown := id
		if subtle.ConstantTimeCompare([]byte(id), []byte(i.s.opts.ClientSecret)) == 1 {
			shown = "<redacted>"
		}
		return oauthError(http.StatusBadRequest, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.", shown, i.s.opts.TenantID))
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(i.s.opts.ClientSecret)) != 1 {
		return oauthError(http.StatusUnauthorized, CodeInvalidClient, fmt.Sprintf("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id))
	}
	resource := ""
	for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
		if res, ok := strings.CutSuffix(sc, "/.default"); ok {
			resource = res
		}
	}
	if resource == "" {
		return oauthError(http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
	}
	// "https://management.core.windows.net//.default" names the resource
	// "https://management.core.windows.net/".
	now := i.s.tokenNow(c.now)
	lifetime := i.s.opts.TokenLifetime
	claims := jwt.MapClaims{
		"aud":   resource,
		"iss":   i.issuerURL(),
		"iat":   now.Unix(),
		"nbf":   now.Add(-5 * time.Minute).Unix(),
		"exp":   now.Add(lifetime).Unix(),
		"tid":   i.s.opts.TenantID,
		"appid": id,
		"oid":   i.s.opts.ClientObjectID,
		"sub":   i.s.opts.ClientObjectID,
		"idtyp": "app",
		"ver":   "2.0",
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = i.kid()
	signed, err := tok.SignedString(i.key)
	if err != nil {
		return errorf(http.StatusInternalServerError, CodeInternalServerError, "sign token: %v", err)
	}
	secs := int(lifetime / time.Second)
	c.w.Header().Set("Cache-Control", "no-store")
	writeJSON(c.w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": signed,
	})
	return nil
}

// principal is who a valid token speaks for.
type principal struct {
	ClientID string
	ObjectID string
}

// authenticate checks a bearer token: signature, issuer, audience and
// expiry on the simulator's clock. Failures are 401s as ARM answers them.
func (i *issuer) authenticate(r *http.Request, now time.Time) (*principal, *Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errorf(http.StatusUnauthorized, CodeAuthenticationFailed, "Authentication failed. The 'Authorization' header is missing.")
	}
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, errorf(http.StatusUnauthorized, CodeAuthenticationFailed, "Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	i.mu.Lock()
	v, hit := i.verified[raw]
	i.mu.Unlock()
	if hit {
		if !now.Before(v.exp) {
			return nil, expiredError(v.exp, now)
		}
		return v.who, nil
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &i.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuer(i.issuerURL()), jwt.WithExpirationRequired())
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			var when time.Time
			if exp, _ := claims.GetExpirationTime(); exp != nil {
				when = exp.Time
			}
			return nil, expiredError(when, now)
		}
		return nil, errorf(http.StatusUnauthorized, CodeInvalidAuthenticationToken, "The access token is invalid.")
	}
	aud, _ := claims.GetAudience()
	if !audienceOK(aud, i.s.URL()) {
		return nil, errorf(http.StatusUnauthorized, CodeInvalidAuthenticationToken,
			"The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.",
			strings.Join(aud, ","), strings.Join(armAudiences, "','"))
	}
	p := &principal{}
	p.ClientID, _ = claims["appid"].(string)
	p.ObjectID, _ = claims["oid"].(string)
	exp, _ := claims.GetExpirationTime()
	i.mu.Lock()
	if i.verified == nil || len(i.verified) >= maxVerified {
		i.verified = map[string]verifiedToken{}
	}
	i.verified[raw] = verifiedToken{who: p, exp: exp.Time}
	i.mu.Unlock()
	return p, nil
}

func expiredError(exp, now time.Time) *Error {
	return errorf(http.StatusUnauthorized, CodeInvalidAuthenticationToken,
		"The access token expiry UTC time '%s' is earlier than current UTC time '%s'.", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
}

func audienceOK(aud []string, self string) bool {
	for _, a := range aud {
		for _, ok := range append(armAudiences, self, self+"/") {
			if strings.EqualFold(a, ok) {
				return true
			}
		}
	}
	return false
}

// oauthError is the token endpoint's error shape (OAuth 2.0, not ARM).
func oauthError(status int, code, desc string) *Error {
	return &Error{Status: status, Code: code, Message: desc, oauth: true}
}

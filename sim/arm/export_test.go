package arm

// AgentToken exposes the signed token for tests that forge requests.
func AgentToken(a *AgentClient) (string, error) { return a.token() }

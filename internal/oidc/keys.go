package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/deadbolt/deadbolt"
)

// Signing algorithms. RS256 is the default: every OpenID Connect client
// must accept it; ES256 is smaller and faster where clients take it.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// keyOverlap is how long a retired key stays published: longer than any
// token it signed lives, so that those tokens keep verifying.
const keyOverlap = 2 * deadbolt.OIDCAccessTokenTTL

// signingKey is a key opened for use: the library signs with it and
// publishes its public half.
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k *signingKey) ID() string                                  { return k.id }
func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Algorithm() jose.SignatureAlgorithm          { return k.alg }
func (k *signingKey) Use() string                                 { return "sig" }

// Key is the private key for SigningKey and the public one for Key; the
// library takes each through a different interface, so publishedKey wraps
// the public side.
func (k *signingKey) Key() any { return k.key }

type publishedKey struct{ *signingKey }

func (k publishedKey) Key() any { return k.key.Public() }

func openKey(k *deadbolt.OIDCKey) (*signingKey, error) {
	priv, err := x509.ParsePKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("oidc: key %s: %w", k.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("oidc: key %s is no signer", k.ID)
	}
	return &signingKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Alg), key: signer}, nil
}

// newKey generates a key of the algorithm.
func newKey(alg string) ([]byte, error) {
	var priv any
	var err error
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, deadbolt.Invalid("alg", "The signing algorithm must be RS256 or ES256.")
	}
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(priv)
}

// RotateKeys makes a new signing key for the account; the one it replaces
// stays published for keyOverlap, so that tokens it signed still verify.
func (p *Provider) RotateKeys(ctx context.Context, acc *deadbolt.Account, alg string) (*deadbolt.OIDCKey, error) {
	if alg == "" {
		alg = AlgRS256
	}
	der, err := newKey(alg)
	if err != nil {
		return nil, err
	}
	k := &deadbolt.OIDCKey{AccountID: acc.ID, ID: newID(), Alg: alg, Private: der, CreatedAt: p.now()}
	if err := p.store.CreateOIDCKey(ctx, k); err != nil {
		return nil, err
	}
	p.audit(ctx, deadbolt.AuditEvent{AccountID: acc.ID, Type: deadbolt.AuditOIDCKeysRotated, Details: map[string]string{"key_id": k.ID, "alg": alg}})
	return k, nil
}

// publishedKeys returns the account's keys to publish, the signing key
// first; an account without one gets its first.
func (p *Provider) publishedKeys(ctx context.Context, acc *deadbolt.Account) ([]publishedKey, error) {
	keys, err := p.store.FindOIDCKeys(ctx, acc.ID, p.now().Add(-keyOverlap))
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 || !keys[0].RetiredAt.IsZero() {
		if err := p.firstKey(ctx, acc); err != nil {
			return nil, err
		}
		if keys, err = p.store.FindOIDCKeys(ctx, acc.ID, p.now().Add(-keyOverlap)); err != nil {
			return nil, err
		}
	}
	out := make([]publishedKey, 0, len(keys))
	for _, k := range keys {
		sk, err := openKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, publishedKey{sk})
	}
	return out, nil
}

// firstKey makes an account's first key. Racing processes both try; the
// store lets one key be current, and the loser uses the winner's.
func (p *Provider) firstKey(ctx context.Context, acc *deadbolt.Account) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	keys, err := p.store.FindOIDCKeys(ctx, acc.ID, p.now().Add(-keyOverlap))
	if err != nil {
		return err
	}
	if len(keys) > 0 && keys[0].RetiredAt.IsZero() {
		return nil
	}
	if _, err := p.RotateKeys(ctx, acc, AlgRS256); err != nil && !deadbolt.IsCode(err, deadbolt.EConflict) {
		return err
	}
	return nil
}

// signingKey is the account's current key.
func (p *Provider) signingKey(ctx context.Context, acc *deadbolt.Account) (*signingKey, error) {
	keys, err := p.publishedKeys(ctx, acc)
	if err != nil {
		return nil, err
	}
	return keys[0].signingKey, nil
}

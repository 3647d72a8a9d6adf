package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/deadbolt/deadbolt"
)

// CreatePasscode stores a passcode and its message together.
func (s *DB) CreatePasscode(ctx context.Context, p *deadbolt.Passcode, m *deadbolt.Message) error {
	np, nm := *p, *m
	np.ID, nm.ID = newID(), newID()
	if np.CreatedAt.IsZero() {
		np.CreatedAt = s.clock()
	}
	np.CreatedAt, np.ExpiresAt = normTime(np.CreatedAt), normTime(np.ExpiresAt)
	nm.AccountID, nm.UserID, nm.PasscodeID, nm.Status = np.AccountID, np.UserID, np.ID, deadbolt.MessageQueued
	nm.CreatedAt, nm.NextAttemptAt, nm.ExpiresAt = np.CreatedAt, np.CreatedAt, normTime(nm.ExpiresAt)
	recipient, content, err := s.sealMessage(&nm)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.userExists(ctx, tx, np.AccountID, np.UserID); err != nil {
			return err
		}
		// The earlier live codes of this challenge or factor die.
		if _, err := s.exec(ctx, tx, `UPDATE passcodes SET used_at = ?
			WHERE account_id = ? AND user_id = ? AND challenge_id = ? AND factor_id = ? AND channel = ? AND used_at IS NULL`,
			micros(np.CreatedAt), np.AccountID, np.UserID, np.ChallengeID, np.FactorID, string(np.Channel)); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO passcodes (account_id, id, user_id, challenge_id, factor_id, channel, code_hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			np.AccountID, np.ID, np.UserID, np.ChallengeID, np.FactorID, string(np.Channel), np.CodeHash,
			micros(np.CreatedAt), micros(np.ExpiresAt)); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO messages (account_id, id, user_id, channel, recipient, content, passcode_id, status,
			expires_at, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
			nm.AccountID, nm.ID, nm.UserID, string(nm.Channel), recipient, content, nm.PasscodeID,
			micros(nm.ExpiresAt), micros(nm.NextAttemptAt), micros(nm.CreatedAt))
		return err
	})
	if err != nil {
		return err
	}
	*p, *m = np, nm
	return nil
}

// messageContent is the sealed part of a message.
type messageContent struct {
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text"`
	HTML    string `json:"html,omitempty"`
}

func (s *DB) sealMessage(m *deadbolt.Message) (recipient, content []byte, err error) {
	if recipient, err = s.sealer.Seal([]byte(m.To), aad("messages.recipient", m.AccountID, m.ID)); err != nil {
		return nil, nil, fmt.Errorf("store: seal: %w", err)
	}
	b, err := json.Marshal(messageContent{Subject: m.Subject, Text: m.Text, HTML: m.HTML})
	if err != nil {
		return nil, nil, err
	}
	if content, err = s.sealer.Seal(b, aad("messages.content", m.AccountID, m.ID)); err != nil {
		return nil, nil, fmt.Errorf("store: seal: %w", err)
	}
	return recipient, content, nil
}

func (s *DB) openMessage(m *deadbolt.Message, recipient, content []byte) error {
	to, err := s.sealer.Open(recipient, aad("messages.recipient", m.AccountID, m.ID))
	if err != nil {
		return fmt.Errorf("store: open recipient of message %s: %w", m.ID, err)
	}
	m.To = string(to)
	if content == nil {
		return nil
	}
	b, err := s.sealer.Open(content, aad("messages.content", m.AccountID, m.ID))
	if err != nil {
		return fmt.Errorf("store: open content of message %s: %w", m.ID, err)
	}
	var c messageContent
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	m.Subject, m.Text, m.HTML = c.Subject, c.Text, c.HTML
	return nil
}

// LatestPasscode returns the newest passcode of a challenge or factor. A new
// code kills the others, so at most one is unused: that one comes first,
// even when two were made in the same microsecond.
func (s *DB) LatestPasscode(ctx context.Context, accountID, challengeID, factorID string, ch deadbolt.Channel) (*deadbolt.Passcode, error) {
	var p deadbolt.Passcode
	err := s.queryRow(ctx, s.db, `SELECT account_id, id, user_id, challenge_id, factor_id, channel, code_hash, created_at, expires_at, used_at
		FROM passcodes WHERE account_id = ? AND challenge_id = ? AND factor_id = ? AND channel = ?
		ORDER BY CASE WHEN used_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id DESC LIMIT 1`, accountID, challengeID, factorID, string(ch)).Scan(
		&p.AccountID, &p.ID, &p.UserID, &p.ChallengeID, &p.FactorID, &p.Channel, &p.CodeHash, at(&p.CreatedAt), at(&p.ExpiresAt), at(&p.UsedAt))
	if err != nil {
		return nil, notFound(err, deadbolt.ENotFound, "Passcode")
	}
	return &p, nil
}

// UsePasscode marks a live passcode used, in one conditional statement.
func (s *DB) UsePasscode(ctx context.Context, accountID, id string, now time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE passcodes SET used_at = ? WHERE account_id = ? AND id = ? AND used_at IS NULL AND expires_at > ?`,
		micros(now), accountID, id, micros(now))
	if err != nil {
		return err
	}
	return checkOne(res, deadbolt.ENotFound, "Passcode")
}

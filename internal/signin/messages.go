package signin

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"text/template"
	"time"

	"github.com/deadbolt/deadbolt"
)

// purpose is what a passcode is for; it decides the words of its message.
type purpose int

const (
	purposeSignIn  purpose = iota // a second factor at sign-in
	purposeConfirm                // confirming a new SMS or email factor
	purposeDevice                 // 2-step verification on a new device
	purposeStepUp                 // confirming a sensitive action
)

// purposeNames name purposes in the audit log.
var purposeNames = map[purpose]string{purposeSignIn: "sign_in", purposeConfirm: "confirm_factor", purposeDevice: "device_verification",
	purposeStepUp: "step_up"}

// texts are the message words per purpose. Every message says what the
// code is for, how long it lasts, and what to do if you did not ask for it.
var texts = map[purpose]struct{ subject, lead, unasked string }{
	purposeSignIn: {"Your sign-in code for %s", "Use this code to finish signing in to %s.",
		"If you did not try to sign in, someone may know your password: change it now."},
	purposeConfirm: {"Confirm your new verification method for %s", "Use this code to finish setting up sign-in codes for %s.",
		"If you did not ask for this, someone may be signed in as you: change your password and check your security settings."},
	purposeDevice: {"Verify a new device signing in to %s", "Someone, hopefully you, is signing in to %s from a device we do not recognise. Use this code to verify it.",
		"If this was not you, do not share the code: change your password now."},
	purposeStepUp: {"Confirm a change to your %s account", "Use this code to confirm a change to your security settings at %s.",
		"If you did not ask for this, change your password and check your security settings."},
}

var emailText = template.Must(template.New("email").Parse(`{{.Lead}}

    {{.Code}}

The code expires in {{.Expires}} and works once. Never share it: {{.Account}} staff will never ask you for it.

{{.Unasked}}
`))

var emailHTML = htmltemplate.Must(htmltemplate.New("email").Parse(`<!doctype html>
<html lang="en"><body style="font-family: system-ui, sans-serif; color: #1a1a1a; max-width: 32rem">
<p>{{.Lead}}</p>
<p style="font-size: 2rem; font-weight: bold; letter-spacing: .3rem; font-family: ui-monospace, monospace">{{.Code}}</p>
<p>The code expires in {{.Expires}} and works once. Never share it: {{.Account}} staff will never ask you for it.</p>
<p style="color: #555">{{.Unasked}}</p>
</body></html>
`))

// composeMessage writes the message that carries a code.
func composeMessage(acc *deadbolt.Account, ch deadbolt.Channel, to, code string, ttl time.Duration, p purpose) (*deadbolt.Message, error) {
	t := texts[p]
	expires := humanDuration(ttl)
	m := &deadbolt.Message{Channel: ch, To: to}
	if ch == deadbolt.ChannelSMS {
		// One SMS segment: the code first, so phones can offer to fill it in.
		m.Text = fmt.Sprintf("%s is your %s code. It expires in %s. Never share it.", code, acc.Name, expires)
		if len(m.Text) > 160 {
			m.Text = fmt.Sprintf("%s is your sign-in code. It expires in %s.", code, expires)
		}
		return m, nil
	}
	data := map[string]string{"Lead": fmt.Sprintf(t.lead, acc.Name), "Code": code, "Expires": expires,
		"Account": acc.Name, "Unasked": t.unasked}
	var text, html bytes.Buffer
	if err := emailText.Execute(&text, data); err != nil {
		return nil, err
	}
	if err := emailHTML.Execute(&html, data); err != nil {
		return nil, err
	}
	m.Subject, m.Text, m.HTML = fmt.Sprintf(t.subject, acc.Name), text.String(), html.String()
	return m, nil
}

var noticeText = template.Must(template.New("notice").Parse(`{{.Body}}

{{.Unasked}}
`))

var noticeHTML = htmltemplate.Must(htmltemplate.New("notice").Parse(`<!doctype html>
<html lang="en"><body style="font-family: system-ui, sans-serif; color: #1a1a1a; max-width: 32rem">
<p>{{.Body}}</p>
<p style="color: #555">{{.Unasked}}</p>
</body></html>
`))

// composeNotice writes an email that tells a user of something done to
// their account.
func composeNotice(acc *deadbolt.Account, to, subject, body, unasked string) *deadbolt.Message {
	data := map[string]string{"Body": body, "Unasked": unasked}
	var text, html bytes.Buffer
	noticeText.Execute(&text, data)
	noticeHTML.Execute(&html, data)
	return &deadbolt.Message{Channel: deadbolt.ChannelEmail, To: to, Subject: subject + " (" + acc.Name + ")", Text: text.String(), HTML: html.String()}
}

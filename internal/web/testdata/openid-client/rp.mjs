// A relying party written with the npm openid-client (and jose for the
// tokens openid-client does not check itself: an ID token kept from
// before a key rotation, a back-channel logout token). TestOIDCOpenIDClient
// drives it: one JSON command per line on stdin, one JSON answer per line
// on stdout. The browser's part (Deadbolt's sign-in pages) is the Go
// test's; this process only does what an application's server does.
//
// Deadbolt in the test runs on a clock of its own: every command may carry
// `skew`, the seconds Deadbolt's clock is ahead of this one, and the
// configuration is rebuilt when it changes (as openid-client's clockSkew is
// set at discovery).
import * as client from 'openid-client';
import * as jose from 'jose';
import { createInterface } from 'node:readline';

let setup; // the discover command's fields
let config;
let skew = 0;
const pending = new Map(); // state -> { verifier, nonce }

async function discover(cmd) {
  setup = cmd;
  skew = cmd.skew ?? 0;
  const metadata = { client_secret: cmd.client_secret, [client.clockSkew]: skew };
  config = await client.discovery(new URL(cmd.issuer), cmd.client_id, metadata, undefined, {
    // The test serves Deadbolt over plain HTTP on loopback.
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  return { metadata: config.serverMetadata() };
}

function now() {
  return new Date(Date.now() + skew * 1000);
}

function tokens(t) {
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token ?? '',
    id_token: t.id_token ?? '',
    claims: t.claims() ?? null,
  };
}

async function jwks() {
  // A fresh set each time: a cached one would hide what is published now.
  return jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri), { cooldownDuration: 0, cacheMaxAge: 0 });
}

const ops = {
  discover,

  async authorize(cmd) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    pending.set(state, { verifier, nonce });
    const params = {
      redirect_uri: setup.redirect_uri,
      scope: 'openid profile email offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(cmd.params ?? {}),
    };
    return { url: client.buildAuthorizationUrl(config, params).href, state };
  },

  // callback is the application's redirect URI handler: the URL the
  // browser was sent to, checked against what authorize started.
  async callback(cmd) {
    const url = new URL(cmd.url);
    const p = pending.get(url.searchParams.get('state'));
    if (!p) {
      throw new Error(`unknown state in ${cmd.url}`);
    }
    const t = await client.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: p.verifier,
      expectedState: url.searchParams.get('state'),
      expectedNonce: p.nonce,
      idTokenExpected: true,
    });
    return tokens(t);
  },

  async userinfo(cmd) {
    return { userinfo: await client.fetchUserInfo(config, cmd.access_token, cmd.sub) };
  },

  async refresh(cmd) {
    return tokens(await client.refreshTokenGrant(config, cmd.refresh_token));
  },

  async end_session(cmd) {
    return {
      url: client.buildEndSessionUrl(config, {
        id_token_hint: cmd.id_token_hint,
        post_logout_redirect_uri: setup.post_logout_redirect_uri,
        state: cmd.state,
      }).href,
    };
  },

  // verify checks a JWT against the JWKS published now: an ID token, or a
  // back-channel logout token (OpenID Connect Back-Channel Logout 1.0,
  // section 2.6).
  async verify(cmd) {
    const { payload, protectedHeader } = await jose.jwtVerify(cmd.jwt, await jwks(), {
      issuer: config.serverMetadata().issuer,
      audience: setup.client_id,
      currentDate: now(),
      clockTolerance: 30,
      ...(cmd.kind === 'logout' ? { typ: 'logout+jwt' } : {}),
    });
    if (cmd.kind === 'logout') {
      const events = payload.events ?? {};
      if (typeof events['http://schemas.openid.net/event/backchannel-logout'] !== 'object') {
        throw new Error('logout token without the back-channel logout event');
      }
      if ('nonce' in payload) {
        throw new Error('logout token with a nonce');
      }
      if (!payload.sub && !payload.sid) {
        throw new Error('logout token with neither sub nor sid');
      }
    }
    return { payload, header: protectedHeader };
  },
};

function answer(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
    if (setup && cmd.skew !== undefined && cmd.skew !== skew) {
      await discover({ ...setup, skew: cmd.skew });
    }
    const op = ops[cmd.op];
    if (!op) throw new Error(`unknown op ${cmd.op}`);
    answer({ ok: true, ...(await op(cmd)) });
  } catch (err) {
    // openid-client's errors carry the OAuth error code (invalid_grant,
    // login_required...); jose's and its own carry a code of their own.
    answer({ ok: false, error: err.error ?? err.code ?? err.name, message: String(err.message ?? err) });
  }
}

"""The identity service's operations, one module per context: `auth` (register, log in, refresh,
log out), `me` (the account, real name), `totp`, `contacts`, `keys` (partner API keys) and `admin`
(levels, roles, the first admin). Each takes `IdentityDeps` and plain values."""

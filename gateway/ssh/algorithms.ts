// Which ciphers the gateway negotiates, both ways. ssh2 runs chacha20-poly1305 in JavaScript
// unless its native addon is built (dist/ carries none: it runs on any runner), about ten times
// slower than AES-GCM through node:crypto (AES-NI). OpenSSH clients put chacha20 first and the
// server's list only filters theirs, so it is left out: AES-GCM, then AES-CTR, all hardware-fast.
export const CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'];

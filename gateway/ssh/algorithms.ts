// Which ciphers the gateway negotiates. ssh2 runs chacha20-poly1305 in JavaScript unless its
// native addon is built (dist/ carries none: it runs on any runner), about ten times slower than
// AES through node:crypto (AES-NI). AES-GCM needs no separate MAC, so it beats AES-CTR with
// HMAC-SHA-256. A server's list only filters the client's preference (OpenSSH: chacha20, then
// CTR, then GCM), so the listener offers GCM alone; towards the host the gateway is the client
// and its order wins, with CTR kept for hosts without GCM.
export const LISTENER_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];
export const UPSTREAM_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'];

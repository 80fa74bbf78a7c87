/**
 * The Lua scripts of the Redis session store. Each runs atomically in Redis, so a session has
 * one owner at a time and every change to it is checked against that owner's generation.
 *
 * Keys (P is the key prefix, `tether:` by default; sid is the 16-hex session id):
 *
 * | key                | type   | holds                                                                 |
 * | ------------------ | ------ | --------------------------------------------------------------------- |
 * | `P s:{sid}`        | hash   | the session (fields below)                                            |
 * | `P o:{sid}`        | list   | server→client messages not yet acknowledged, oldest first: element i  |
 * |                    |        | has seq `ack + 1 + i` (encoded by record.ts)                          |
 * | `P sessions`       | zset   | every session id, by creation time (the total cap)                    |
 * | `P idle`           | zset   | disconnected sessions, by expiry time (TTL, the longest disconnected) |
 * | `P identity:{idn}` | zset   | the sessions of one identity, by creation time (the identity cap)    |
 * | `P client:{cid}`   | string | the newest session of a client id (`sendTo`)                          |
 * | `P instances`      | zset   | live instances, by lease expiry                                       |
 * | `P own:{inst}`     | set    | the sessions an instance owns                                         |
 * | `P epoch:{inst}`   | string | the instance's current Redis connection: appends of an older one fail |
 *
 * Session fields: `cid` client id, `idn` identity, `tok` SHA-256 (hex) of the resume token,
 * `ttl` session TTL in ms, `own` owning instance ('' when none), `gen` ownership generation
 * (incremented by every take), `in` client→server seq delivered (durable: an ACK never says
 * more), `mark` client→server seq possibly handed to the application (the owner raises it
 * before delivering; `(in, mark]` is what a crash may deliver twice), `ack` server→client seq
 * acknowledged, `next` highest server→client seq assigned, `a:{inst}` `appendId:firstSeq` of
 * the instance's latest append (a retried append is applied once).
 *
 * Instance channel `P ch:{inst}` carries, one per PUBLISH:
 * - `n <sid> <firstSeq> <count> <len>... \n<records>`: messages appended by another instance;
 * - `t <sid>`: another instance took the session;
 * - `e <sid> <code>`: the session ended (to its owner, or to the origin of messages in it);
 * - `a <sid> <seq>` lines: messages this instance sent were acknowledged up to seq;
 * - `h <sid> <inst>`: `inst` wants to take the session (its client is there): hand it over;
 * - `H <sid>`: the session was handed over as asked.
 */

// Shared helpers, prepended to every script. ARGV[1] is always the key prefix.
const PRELUDE: string = `
local P = ARGV[1]
local function skey(sid) return P .. 's:' .. sid end
local function okey(sid) return P .. 'o:' .. sid end
local function notify(owner, message)
  if owner and owner ~= '' then redis.call('PUBLISH', P .. 'ch:' .. owner, message) end
end
-- Deletes a session and its index entries; returns its owner ('' or false when none).
local function drop(sid)
  local s = skey(sid)
  local f = redis.call('HMGET', s, 'cid', 'idn', 'own')
  if f[1] then
    local ck = P .. 'client:' .. f[1]
    if redis.call('GET', ck) == sid then redis.call('DEL', ck) end
    redis.call('ZREM', P .. 'identity:' .. f[2], sid)
    if f[3] ~= '' then redis.call('SREM', P .. 'own:' .. f[3], sid) end
  end
  redis.call('DEL', s, okey(sid))
  redis.call('ZREM', P .. 'sessions', sid)
  redis.call('ZREM', P .. 'idle', sid)
  return f[3]
end
-- Whether the session's owner is \`inst\` at generation \`gen\`: nil when the session is gone.
local function owns(sid, inst, gen)
  local f = redis.call('HMGET', skey(sid), 'own', 'gen')
  if not f[1] then return nil end
  return f[1] == inst and f[2] == gen
end
local function idle(sid, expiresAt, keepMs)
  redis.call('ZADD', P .. 'idle', expiresAt, sid)
  redis.call('PEXPIRE', skey(sid), keepMs)
  redis.call('PEXPIRE', okey(sid), keepMs)
end
`;

/**
 * create(P, sid, cid, idn, tokHash, inst, clientAcked, now, ttl, maxSessions, maxPerIdentity)
 * Makes room under the caps (ending the longest-disconnected session in the way, whose owner is
 * told) and stores a new session owned by `inst`. Returns `{'ok', evicted...}` or
 * `{'full', reason}`. Retrying an applied create is a no-op.
 */
const CREATE: string = `${PRELUDE}
local sid, cid, idn, tok, inst = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local clientAcked, now, ttl = ARGV[7], tonumber(ARGV[8]), ARGV[9]
local maxSessions, maxPerIdentity = tonumber(ARGV[10]), tonumber(ARGV[11])
if redis.call('HGET', skey(sid), 'own') == inst then return {'ok'} end
local evicted = {}
local ik = P .. 'identity:' .. idn
if redis.call('ZCARD', ik) >= maxPerIdentity then
  local victim
  for _, id in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
    if redis.call('ZSCORE', P .. 'idle', id) then victim = id break end
  end
  if not victim then return {'full', 'identity'} end
  notify(drop(victim), 'e ' .. victim .. ' TOO_MANY_SESSIONS')
  table.insert(evicted, victim)
end
if redis.call('ZCARD', P .. 'sessions') >= maxSessions then
  local victim = redis.call('ZRANGE', P .. 'idle', 0, 0)[1]
  if not victim then return {'full', 'total'} end
  notify(drop(victim), 'e ' .. victim .. ' TOO_MANY_SESSIONS')
  table.insert(evicted, victim)
end
redis.call('HSET', skey(sid), 'cid', cid, 'idn', idn, 'tok', tok, 'ttl', ttl, 'own', inst,
  'gen', 1, 'in', clientAcked, 'mark', clientAcked, 'ack', 0, 'next', 0)
redis.call('ZADD', P .. 'sessions', now, sid)
redis.call('ZADD', ik, now, sid)
redis.call('SET', P .. 'client:' .. cid, sid)
redis.call('SADD', P .. 'own:' .. inst, sid)
return {'ok', unpack(evicted)}
`;

/**
 * take(P, sid, tokHash, cid, idn, inst, force) → {gen, in, mark, ack, next, {records}},
 * {'handoff'} or false. A resume on `inst`: the token, client id and identity must match. When
 * another instance owns the session and still listens on its channel (it is alive) and `force`
 * is not '1', it is asked to hand the session over (`h <sid> <inst>`: it writes out what its
 * application was handed, so nothing is delivered twice, then releases it and answers `H <sid>`);
 * the caller takes again, with `force`, on that answer or after a timeout. Otherwise the previous
 * owner is fenced (its generation is stale) and told (`t`), and the session's state returned.
 */
const TAKE: string = `${PRELUDE}
local sid, tok, cid, idn, inst, force = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local s = skey(sid)
local f = redis.call('HMGET', s, 'tok', 'cid', 'idn', 'own', 'gen', 'in', 'mark', 'ack', 'next')
if not f[1] or f[1] ~= tok or f[2] ~= cid or f[3] ~= idn then return false end
if force ~= '1' and f[4] ~= '' and f[4] ~= inst then
  if redis.call('PUBLISH', P .. 'ch:' .. f[4], 'h ' .. sid .. ' ' .. inst) > 0 then
    return {'handoff'}
  end
end
local gen = tonumber(f[5]) + 1
if f[4] ~= inst then
  if f[4] ~= '' then
    redis.call('SREM', P .. 'own:' .. f[4], sid)
    notify(f[4], 't ' .. sid)
  end
  redis.call('SADD', P .. 'own:' .. inst, sid)
end
redis.call('HSET', s, 'own', inst, 'gen', gen)
redis.call('ZREM', P .. 'idle', sid)
redis.call('PERSIST', s)
redis.call('PERSIST', okey(sid))
return {gen, f[6], f[7], f[8], f[9], redis.call('LRANGE', okey(sid), 0, -1)}
`;

/**
 * commit(P, sid, inst, gen, ack, mark, in) → 1, 0 (fenced: another owner) or -1 (gone).
 * The owner's stream positions, each only ever raised: acknowledged messages leave the list.
 */
const COMMIT: string = `${PRELUDE}
local sid, inst, gen = ARGV[2], ARGV[3], ARGV[4]
local ack, mark, delivered = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local s = skey(sid)
local f = redis.call('HMGET', s, 'own', 'gen', 'ack', 'mark', 'in')
if not f[1] then return -1 end
if f[1] ~= inst or f[2] ~= gen then return 0 end
local acked = tonumber(f[3])
if ack > acked then
  redis.call('LTRIM', okey(sid), ack - acked, -1)
  redis.call('HSET', s, 'ack', ack)
end
if mark > tonumber(f[4]) then redis.call('HSET', s, 'mark', mark) end
if delivered > tonumber(f[5]) then redis.call('HSET', s, 'in', delivered) end
return 1
`;

/**
 * append(P, sid, inst, epoch, appendId, record...) → {'ok', firstSeq} | {'gone'} | {'stale'}.
 * Gives the records the next server→client sequence numbers. Any instance may append; the owner
 * (when another instance) is sent the records. Applied once per appendId (a retry after a lost
 * reply returns the first answer); an append from an older connection of `inst` is refused.
 */
const APPEND: string = `${PRELUDE}
local sid, inst, epoch, appendId = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', P .. 'epoch:' .. inst) ~= epoch then return {'stale'} end
local s = skey(sid)
local f = redis.call('HMGET', s, 'own', 'next', 'a:' .. inst)
if not f[1] then return {'gone'} end
if f[3] then
  local sep = string.find(f[3], ':', 1, true)
  if string.sub(f[3], 1, sep - 1) == appendId then return {'ok', string.sub(f[3], sep + 1)} end
end
local first = tonumber(f[2]) + 1
local count = #ARGV - 5
local o = okey(sid)
local lens = {}
for i = 6, #ARGV do
  redis.call('RPUSH', o, ARGV[i])
  lens[#lens + 1] = string.len(ARGV[i])
end
redis.call('HSET', s, 'next', first + count - 1, 'a:' .. inst, appendId .. ':' .. first)
local ttl = redis.call('PTTL', s)
if ttl > 0 then redis.call('PEXPIRE', o, ttl) end
if f[1] ~= '' and f[1] ~= inst then
  notify(f[1], 'n ' .. sid .. ' ' .. first .. ' ' .. count .. ' ' .. table.concat(lens, ' ') ..
    '\\n' .. table.concat(ARGV, '', 6, #ARGV))
end
return {'ok', tostring(first)}
`;

/** fetch(P, sid, from, to) → {ack, {records}}: the retained messages from seq `from` to `to`. */
const FETCH: string = `${PRELUDE}
local sid, from, to = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ack = redis.call('HGET', skey(sid), 'ack')
if not ack then return false end
ack = tonumber(ack)
if from <= ack then from = ack + 1 end
if to < from then return {ack, {}} end
return {ack, redis.call('LRANGE', okey(sid), from - ack - 1, to - ack - 1)}
`;

/**
 * idle(P, sid, inst, gen, expiresAt, keepMs) → 1, 0 (fenced) or -1 (gone). The owner's client
 * left: the session waits for a resume until `expiresAt`; its keys expire by themselves after
 * `keepMs` in case no instance is left to end it.
 */
const IDLE: string = `${PRELUDE}
local sid, inst, gen = ARGV[2], ARGV[3], ARGV[4]
local owned = owns(sid, inst, gen)
if owned == nil then return -1 end
if not owned then return 0 end
idle(sid, ARGV[5], ARGV[6])
return 1
`;

/** touch(P, sid, inst, gen) → 1, 0 (fenced) or -1 (gone). The owner's client is back. */
const TOUCH: string = `${PRELUDE}
local sid, inst, gen = ARGV[2], ARGV[3], ARGV[4]
local owned = owns(sid, inst, gen)
if owned == nil then return -1 end
if not owned then return 0 end
redis.call('ZREM', P .. 'idle', sid)
redis.call('PERSIST', skey(sid))
redis.call('PERSIST', okey(sid))
return 1
`;

/**
 * release(P, sid, inst, gen, expiresAt, keepMs) → 1, 0 or -1. A graceful close hands the
 * session back: no owner, waiting for a resume on any instance until `expiresAt`.
 */
const RELEASE: string = `${PRELUDE}
local sid, inst, gen = ARGV[2], ARGV[3], ARGV[4]
local owned = owns(sid, inst, gen)
if owned == nil then return -1 end
if not owned then return 0 end
redis.call('HSET', skey(sid), 'own', '')
redis.call('SREM', P .. 'own:' .. inst, sid)
idle(sid, ARGV[5], ARGV[6])
return 1
`;

/**
 * end(P, sid, inst, gen, code) → 1, 0 (fenced) or -1 (gone). Ends a session for good. With a generation, only its
 * owner at that generation may (the TTL timer, the application closing its peer); with gen ''
 * anyone may (the application of another instance), and the owner is told.
 */
const END: string = `${PRELUDE}
local sid, inst, gen, code = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if gen ~= '' then
  local owned = owns(sid, inst, gen)
  if owned == nil then return -1 end
  if not owned then return 0 end
end
local owner = drop(sid)
if owner ~= inst then notify(owner, 'e ' .. sid .. ' ' .. code) end
return 1
`;

/**
 * sweep(P, inst, now, leaseMs, graceMs, limit, orphans) → ended sessions. Run by every instance
 * in turn: renews this instance's lease; with `orphans` = '1' (this instance has been connected
 * for a lease, so every live instance had the time to renew its own) hands the sessions of
 * instances whose lease ran out (a crash) back (no owner, idle until their TTL); ends idle sessions whose TTL passed and that no live
 * owner ended (`graceMs` after it, for an owner whose own timer failed).
 */
const SWEEP: string = `${PRELUDE}
local inst, now, leaseMs = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local graceMs, limit, orphans = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1'
redis.call('ZADD', P .. 'instances', now + leaseMs, inst)
local deadOnes = {}
if orphans then
  deadOnes = redis.call('ZRANGEBYSCORE', P .. 'instances', '-inf', '(' .. now, 'LIMIT', 0, 4)
end
for _, dead in ipairs(deadOnes) do
  local ok = P .. 'own:' .. dead
  for _, sid in ipairs(redis.call('SPOP', ok, limit)) do
    local s = skey(sid)
    local f = redis.call('HMGET', s, 'own', 'ttl')
    if f[1] == dead then
      redis.call('HSET', s, 'own', '')
      if not redis.call('ZSCORE', P .. 'idle', sid) then
        idle(sid, now + tonumber(f[2]), tonumber(f[2]) + 60000)
      end
    end
  end
  if redis.call('SCARD', ok) == 0 then
    redis.call('ZREM', P .. 'instances', dead)
    redis.call('DEL', P .. 'epoch:' .. dead)
  end
end
local ended = 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'idle', '-inf', now, 'LIMIT', 0, limit)) do
  local owner = redis.call('HGET', skey(sid), 'own')
  local live = owner and owner ~= '' and tonumber(redis.call('ZSCORE', P .. 'instances', owner) or 0) > now
  if not live or tonumber(redis.call('ZSCORE', P .. 'idle', sid)) + graceMs < now then
    notify(drop(sid), 'e ' .. sid .. ' CLOSED')
    ended = ended + 1
  end
end
return ended
`;

/** leave(P, inst): a closing instance, once it has released its sessions, stops its lease. */
const LEAVE: string = `${PRELUDE}
local inst = ARGV[2]
if redis.call('SCARD', P .. 'own:' .. inst) == 0 then
  redis.call('ZREM', P .. 'instances', inst)
  redis.call('DEL', P .. 'epoch:' .. inst)
end
return 1
`;

/** Every script by command name (ioredis `defineCommand`, no declared keys). */
export const SCRIPTS: {
  readonly tetherCreate: string;
  readonly tetherTake: string;
  readonly tetherCommit: string;
  readonly tetherAppend: string;
  readonly tetherFetch: string;
  readonly tetherIdle: string;
  readonly tetherTouch: string;
  readonly tetherRelease: string;
  readonly tetherEnd: string;
  readonly tetherSweep: string;
  readonly tetherLeave: string;
} = {
  tetherCreate: CREATE,
  tetherTake: TAKE,
  tetherCommit: COMMIT,
  tetherAppend: APPEND,
  tetherFetch: FETCH,
  tetherIdle: IDLE,
  tetherTouch: TOUCH,
  tetherRelease: RELEASE,
  tetherEnd: END,
  tetherSweep: SWEEP,
  tetherLeave: LEAVE,
};

/** A script's name. */
export type ScriptName = keyof typeof SCRIPTS;

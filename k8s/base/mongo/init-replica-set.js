// Idempotent bootstrap of the MongoDB replica set, run by init-job.yaml with `mongosh --nodb`.
//
// Waits until every member (<service>-0.<service> ... <service>-N-1.<service>) answers, then
// initiates the set if it has no configuration yet, then waits for a primary. A set that already
// exists is left alone, even if MONGO_REPLICAS grew: add members to a live set with rs.add().

const replicas = parseInt(process.env.MONGO_REPLICAS || '1', 10);
const service = process.env.MONGO_SERVICE || 'mongo';
const setName = process.env.MONGO_REPLICA_SET || 'rs0';
const hosts = Array.from({ length: replicas }, (_, i) => `${service}-${i}.${service}:27017`);

// mongosh may throw on {ok: 0} or return it, depending on the command path: normalise to a document.
function command(db, cmd) {
  try {
    return db.runCommand(cmd);
  } catch (e) {
    return { ok: 0, codeName: e.codeName, errmsg: e.message };
  }
}

function connect(host) {
  for (let attempt = 1; ; attempt++) {
    try {
      const conn = new Mongo(`mongodb://${host}/?directConnection=true&serverSelectionTimeoutMS=5000`);
      conn.getDB('admin').runCommand({ ping: 1 });
      return conn;
    } catch (e) {
      // About 10 minutes: long enough for volumes to attach and images to pull.
      if (attempt >= 120) throw e;
      print(`waiting for ${host}: ${e.message}`);
      sleep(5000);
    }
  }
}

// rs.initiate checks that a majority of the listed members is reachable: wait for all of them.
// (A plain loop: mongosh's synchronous-looking shell calls are not safe inside Array callbacks.)
let first = null;
for (const host of hosts) {
  const conn = connect(host);
  if (first === null) first = conn;
}
const admin = first.getDB('admin');

const status = command(admin, { replSetGetStatus: 1 });
if (status.ok === 1) {
  print(`replica set ${status.set} already initiated with ${status.members.length} member(s)`);
  if (status.members.length !== replicas) {
    print(`WARNING: MONGO_REPLICAS=${replicas} but the set has ${status.members.length}; use rs.add()/rs.remove()`);
  }
} else if (status.codeName === 'NotYetInitialized') {
  const config = {
    _id: setName,
    // mongo-0 is preferred as primary so that a fresh set settles quickly and predictably.
    members: hosts.map((host, i) => ({ _id: i, host, priority: i === 0 ? 2 : 1 })),
  };
  const res = command(admin, { replSetInitiate: config });
  if (res.ok !== 1 && res.codeName !== 'AlreadyInitialized') {
    throw new Error(`replSetInitiate failed: ${tojson(res)}`);
  }
  print(`initiated ${tojson(config)}`);
} else {
  throw new Error(`unexpected replSetGetStatus answer: ${tojson(status)}`);
}

for (let i = 0; i < 60; i++) {
  const hello = command(admin, { hello: 1 });
  if (hello.primary) {
    print(`primary is ${hello.primary}`);
    quit(0);
  }
  sleep(2000);
}
throw new Error('no primary elected within 2 minutes');

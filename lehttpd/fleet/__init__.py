"""Several Apache servers behind a load balancer share their certificates through etcd.

Each node keeps its local certbot-layout store (Apache never depends on etcd); etcd holds one copy of every
lineage (private keys sealed with the fleet key), a lease lock per lineage with fenced writes, http-01 tokens
and node heartbeats. See the README's fleet section for the layout, the lock and what the agent does.
"""

// Package importer turns keepalived configurations into LoadBalancerConfigs
// (vipvs.io/v1alpha1) and reports, line by line, what has no equivalent:
// `vipvs import`.
//
// # Reading keepalived.conf
//
// The reader follows keepalived's own parser (keepalived.conf(5), version
// 2.2): comments start at '#' or '!' outside quotes; words are separated by
// whitespace, quotes (" or ') group and are removed, backslash escapes
// inside quotes; '{' and '}' are words of their own. include (and includer,
// includem, includew, includeb, includea) reads the files matching a glob
// pattern, relative to the including file's directory; a pattern matching
// nothing is reported, an include loop is an error. Conditional lines
// (@id, @^id) are evaluated against the node's config id, the first label
// of the node's name (keepalived's default is the host name); lines skipped
// for every node are reported. Single-line parameter definitions
// ($NAME=VALUE) are substituted (${NAME}, $NAME, ${_PWD}, ${_HASH});
// multi-line definitions and ~SEQ are errors. Every word keeps its file and
// line, and every note and error names them.
//
// Block structure is checked: an unbalanced brace, an unknown top-level
// keyword, a block where none belongs (or none where one does) and a bad
// value are errors with file:line. Inside known blocks, a keyword without
// an equivalent is reported and ignored, as keepalived ignores unknown
// keywords.
//
// # Several nodes
//
// A keepalived.conf is one node's view: it holds that node's priority only.
// Import takes one configuration per node (Input), identifies each virtual
// router across the files by address family and virtual_router_id, and
// requires the files to agree on its addresses, VRRP version, advert
// interval, password and unicast or multicast; it builds
// spec.priorities.byNode from each file's priority. Where the files differ
// in what vipvs holds once (preemption, tracked scripts, interface names,
// virtual_servers), the first file wins and the others are reported. A node
// without a name is named after its router_id when that is a valid node
// name, else node-N.
//
// # From virtual routers to LoadBalancerConfigs
//
// A LoadBalancerConfig holds once what every one of its virtual IPs shares:
// VRRP version, advert interval, password, unicast, preemption, the nodes'
// priorities, the track checks and the services (each offered on every
// virtual IP). The virtual routers are therefore grouped: routers that
// share all of these (their real servers may differ by address family, as
// in dual stack) become one LoadBalancerConfig with several virtualIPs;
// the others become further LoadBalancerConfigs in the same multi-document
// YAML, each with its own agentStatusPort (9444, 9445, ...) since they
// select the same nodes. The report says why a router got a
// LoadBalancerConfig of its own, and what became of each vrrp_sync_group.
//
// vipvs runs one virtual router per address, so the second and further
// addresses of an instance (and virtual_ipaddress_excluded addresses) get
// VRIDs of their own: the next free ones after the instance's, reported.
//
// # What maps, what is approximated, what has no equivalent
//
// Mapped: state BACKUP, interface, virtual_router_id, priority (255
// becomes 254), advert_int, nopreempt, preempt_delay, version and
// vrrp_version (keepalived's default, 2, is kept, so that keepalived and
// vipvs nodes can share a router during a migration), authentication PASS
// (the password goes into a Secret that the LoadBalancerConfig names; it is
// never printed), unicast_peer (unicast: true; the peers are the selected
// nodes), virtual_ipaddress (address, prefix, dev), track_script with
// vrrp_script (interval, timeout, weight, rise, fall), track_interface,
// virtual_server ADDRESS PORT and group (delay_loop, lb_algo, lb_kind,
// persistence_timeout, protocol), real_server (weight) and its TCP_CHECK,
// HTTP_GET, SSL_GET (path, status_code, connect_port, connect_timeout,
// retry as fall = retry+1) and MISC_CHECK (misc_path as exec, with the real
// server's address and port arguments replaced by VIPVS_BACKEND_ADDRESS
// and VIPVS_BACKEND_PORT).
//
// Scripts: curl of a URL becomes an http check (-k: certificate not
// verified, --cacert: caFile, --max-time and a timeout(1) wrapper: the
// timeout; several curls joined by && become several checks: weight 0 and
// a negative weight go to each, a positive weight is split among them), nc -z and bash's /dev/tcp become tcp checks;
// pidof, pgrep, killall -0 and systemctl is-active check a process, which
// vipvs cannot: such a script is not imported and the report says what to
// track instead; anything else becomes an exec check (through /bin/sh -c
// when it needs a shell).
//
// No equivalent (reported): state MASTER (priorities decide), notify*
// (set per node in the agent's configuration), smtp and e-mail, script
// users and security, gratuitous ARP tuning, mcast_src_ip and
// unicast_src_ip (the agent uses the node's address), use_vmac,
// virtual_routes and virtual_rules, track_file, track_process, track_bfd,
// 'reverse' weights, vrrp_sync_group (see above), static addresses and
// routes, fwmark and port-less virtual servers, sorry_server, quorum,
// schedulers other than rr, wrr, lc, wlc, sh and mh (imported as wlc),
// checkers other than the four above, connect_ip, digest and regex, more
// than one checker or url per real server (vipvs runs one health check per
// service), labels, scopes and broadcast addresses of virtual IPs. The
// nodeSelector cannot be derived: it is a placeholder unless given.
//
// The LoadBalancerConfigs are validated with api/validation (each after
// defaulting, and as a set) before they are returned.
package importer

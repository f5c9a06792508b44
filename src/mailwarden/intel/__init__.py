"""Outside knowledge about addresses and domains: DNS blocklists (``intel.dnsbl``)."""

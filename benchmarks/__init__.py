"""Measurements that print figures (recorded in RESULTS.md): the router against its peers
(`router_bench`), the prefix index, the emulator's capacity, the client's timing error, a hot
shared prefix. Not shipped: the product's benchmark is `bench/`, its emulator `emulator/`."""

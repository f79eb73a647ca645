/**
 * Kernel call chains (innermost first) of 6.1, starting at the function that fires the event: the probed
 * function for kprobes, the caller of the page_ref helper for page_ref events (mm.ts prepends __page_ref_*),
 * the tracepoint's caller for the others. The emitter adds the tracing plumbing frames per format.
 * GUP and pgmap chains are the ones printed in the qemu-6.1 captures (samples/real/[a-e]-*.trace.txt.gz).
 */

const SYSCALL = ['do_syscall_64', 'entry_SYSCALL_64_after_hwframe'] as const;
const FAULT = ['__handle_mm_fault', 'handle_mm_fault', 'do_user_addr_fault', 'exc_page_fault', 'asm_exc_page_fault'] as const;
/** As printed in qemu-6.1 (d-pgmap-hmm): zap_pte_range/zap_pmd_range/unmap_single_vma are inlined in that build. */
const MUNMAP = ['unmap_region', 'do_mas_align_munmap.constprop.0', '__vm_munmap', '__x64_sys_munmap', ...SYSCALL] as const;
const EXIT = ['exit_mmap', 'mmput', 'do_exit', 'do_group_exit', '__x64_sys_exit_group', ...SYSCALL] as const;
const IDLE_SOFTIRQ = [
  'rcu_core', 'handle_softirqs', 'irq_exit_rcu', 'sysvec_apic_timer_interrupt', 'asm_sysvec_apic_timer_interrupt',
  'default_idle', 'default_idle_call', 'do_idle', 'cpu_startup_entry', 'start_secondary', 'secondary_startup_64_no_verify',
] as const;

export const S = {
  /** do_anonymous_page -> vma_alloc_zeroed_movable_folio (mm_page_alloc in __alloc_pages). */
  anonAlloc: ['__alloc_pages', '__folio_alloc', 'vma_alloc_folio', ...FAULT],
  /** folio_add_lru_vma -> folio_get after page_add_new_anon_rmap. */
  lruAdd: ['folio_add_lru_vma', ...FAULT],
  /** The mapping's reference returned by the mmu_gather batch after zap_pte_range removed the rmap. */
  munmapPut: ['release_pages', 'tlb_batch_pages_flush', 'tlb_finish_mmu', ...MUNMAP],
  /** Same batch flushed from inside zap_pte_range (force_flush; inlined into unmap_page_range) during munmap. */
  zapPut: ['release_pages', 'tlb_batch_pages_flush', 'tlb_flush_mmu', 'unmap_page_range', 'unmap_vmas', ...MUNMAP],
  /** zap_pte_range (inlined) on a device-private entry: put_page reaching 0 calls free_zone_device_page. */
  zapDevice: ['unmap_page_range', 'unmap_vmas', ...MUNMAP],
  exitPut: ['release_pages', 'tlb_batch_pages_flush', 'tlb_finish_mmu', ...EXIT],
  ptAlloc: ['__alloc_pages', 'pte_alloc_one', '__pte_alloc', ...FAULT],
  pgdAlloc: ['__alloc_pages', '__get_free_pages', 'pgd_alloc', 'mm_init', 'dup_mm', 'copy_process', 'kernel_clone', '__do_sys_clone', ...SYSCALL],
  slabAlloc: ['__alloc_pages', 'allocate_slab', '___slab_alloc', '__kmem_cache_alloc_node', '__kmalloc_node_track_caller', 'kmalloc_reserve', '__alloc_skb', 'alloc_skb_with_frags', 'sock_alloc_send_pskb', 'unix_stream_sendmsg', 'sock_write_iter', 'vfs_write', 'ksys_write', ...SYSCALL],
  slabFree: ['__free_pages', '__free_slab', 'discard_slab', '__slab_free', 'kfree', 'skb_release_data', 'consume_skb', 'unix_stream_read_generic', 'unix_stream_recvmsg', 'sock_read_iter', 'vfs_read', 'ksys_read', ...SYSCALL],
  ptFreeExit: ['__free_pages', 'free_pgd_range', 'free_pgtables', ...EXIT],
  rcuFree: ['__free_pages', 'tlb_remove_table_rcu', ...IDLE_SOFTIRQ],
  pagecacheAlloc: ['__alloc_pages', '__folio_alloc', 'filemap_alloc_folio', 'page_cache_ra_unbounded', 'filemap_get_pages', 'filemap_read', 'ext4_file_read_iter', 'vfs_read', 'ksys_read', ...SYSCALL],
  pagecacheGet: ['filemap_get_read_batch', 'filemap_get_pages', 'filemap_read', 'ext4_file_read_iter', 'vfs_read', 'ksys_read', ...SYSCALL],
  pagecacheEvict: ['__filemap_remove_folio', 'remove_mapping', 'shrink_folio_list', 'shrink_inactive_list', 'shrink_lruvec', 'shrink_node', 'balance_pgdat', 'kswapd', 'kthread', 'ret_from_fork'],
  lruIsolate: ['isolate_lru_folios', 'shrink_inactive_list', 'shrink_lruvec', 'shrink_node', 'balance_pgdat', 'kswapd', 'kthread', 'ret_from_fork'],
  khugepagedScan: ['hpage_collapse_scan_pmd', 'khugepaged_scan_mm_slot', 'khugepaged', 'kthread', 'ret_from_fork'],
  numaFault: ['numa_migrate_prep', 'do_numa_page', ...FAULT],

  // ---- GUP (qemu-6.1 a-iouring-longterm / b-vmsplice)
  ioPin: ['pin_user_pages', 'io_pin_pages', 'io_sqe_buffer_register', 'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', ...SYSCALL],
  ioLongterm: ['__gup_longterm_locked', 'io_pin_pages', 'io_sqe_buffer_register', 'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', ...SYSCALL],
  ioGrab: ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'io_pin_pages', 'io_sqe_buffer_register', 'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', ...SYSCALL],
  /** migrate_longterm_unpinnable_pages() (inlined into __gup_longterm_locked) unpins the whole batch. */
  ioUnpinForMigrate: ['unpin_user_page', '__gup_longterm_locked', 'io_pin_pages', 'io_sqe_buffer_register', 'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', ...SYSCALL],
  ioUnpin: ['unpin_user_page', 'io_buffer_unmap', '__io_sqe_buffers_unregister', 'io_sqe_buffers_unregister.cold', '__x64_sys_io_uring_register', ...SYSCALL],
  vmspliceGupFast: ['get_user_pages_fast', '__iov_iter_get_pages_alloc', 'iov_iter_get_pages2', '__do_sys_vmsplice', ...SYSCALL],
  vmspliceInternal: ['internal_get_user_pages_fast', '__iov_iter_get_pages_alloc', 'iov_iter_get_pages2', '__do_sys_vmsplice', ...SYSCALL],
  vmspliceGrab: ['try_grab_folio', 'internal_get_user_pages_fast', '__iov_iter_get_pages_alloc', 'iov_iter_get_pages2', '__do_sys_vmsplice', ...SYSCALL],
  cmaAlloc: ['cma_alloc', 'cma_alloc_write', 'simple_attr_write_xsigned.constprop.0.isra.0', 'debugfs_attr_write', 'full_proxy_write', 'vfs_write', 'ksys_write', ...SYSCALL],
  /** A videobuf2 driver allocating a DMA buffer from its CMA area. */
  dmaCma: ['cma_alloc', 'dma_alloc_contiguous', '__dma_direct_alloc_pages', 'dma_direct_alloc', 'dma_alloc_attrs', 'vb2_dc_alloc', 'vb2_core_reqbufs', 'vb2_ioctl_reqbufs', '__video_do_ioctl', 'video_usercopy', 'v4l2_ioctl', '__x64_sys_ioctl', ...SYSCALL],
  idleSoftirq: IDLE_SOFTIRQ,
  syscall: SYSCALL,
  fault: FAULT,
  munmap: MUNMAP,
} as const;

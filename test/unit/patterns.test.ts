// findU16FieldCompare on hand-assembled code (encodings checked with
// `llvm-mc-14 --assemble --show-encoding -x86-asm-syntax=intel`) and on the
// real hyper Server::encode of the apps.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { findTlsArgStores, findU16FieldCompare, tlsGetterOffset } from '../../src/binary/patterns';
import { analyzeBinary } from '../../src/binary';
import { appBinary } from '../helpers/rustbuild';

const BASE = 0x401000;
const HYPER_ENCODE = '<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::encode';

/** Concatenates instruction encodings and ends the function with `ret`. */
function code(...instrs: number[][]): Buffer { return Buffer.from([...instrs.flat(), 0xc3]); }

function offsets(buf: Buffer, imm = 101) {
  return findU16FieldCompare(buf, BASE, 'RSI', imm).map(({ outerOffset, innerOffset }) => ({ outerOffset, innerOffset }));
}

const I = {
  mov_rsi_rsi10: [0x48, 0x8b, 0x76, 0x10], //       mov rsi, qword ptr [rsi+0x10]
  mov_rcx_rsi8: [0x48, 0x8b, 0x4e, 0x08], //        mov rcx, qword ptr [rsi+8]
  movzx_edx_rcx20: [0x0f, 0xb7, 0x51, 0x20], //     movzx edx, word ptr [rcx+0x20]
  cmp_dx_65: [0x66, 0x83, 0xfa, 0x65], //           cmp dx, 0x65
  mov_rax_rsi10: [0x48, 0x8b, 0x46, 0x10], //       mov rax, qword ptr [rsi+0x10]
  movzx_eax_rax68: [0x0f, 0xb7, 0x40, 0x68], //     movzx eax, word ptr [rax+0x68]
  movzx_ecx_rax20: [0x0f, 0xb7, 0x48, 0x20], //     movzx ecx, word ptr [rax+0x20]
  cmp_cx_65: [0x66, 0x83, 0xf9, 0x65], //           cmp cx, 0x65
  cmp_cx_66: [0x66, 0x83, 0xf9, 0x66], //           cmp cx, 0x66
  cmp_ax_65: [0x66, 0x83, 0xf8, 0x65], //           cmp ax, 0x65
  mov_r14_rsi10: [0x4c, 0x8b, 0x76, 0x10], //       mov r14, qword ptr [rsi+0x10]
  movzx_ecx_r14_68: [0x41, 0x0f, 0xb7, 0x4e, 0x68], // movzx ecx, word ptr [r14+0x68]
  mov_rbp_rsi: [0x48, 0x89, 0xf5], //               mov rbp, rsi
  mov_rbx_rsi: [0x48, 0x89, 0xf3], //               mov rbx, rsi
  push_rbx: [0x53], //                              push rbx
  sub_rsp_20: [0x48, 0x83, 0xec, 0x20], //          sub rsp, 0x20
  mov_rax_rbp10: [0x48, 0x8b, 0x45, 0x10], //       mov rax, qword ptr [rbp+0x10]
  mov_rcx_rbx8: [0x48, 0x8b, 0x4b, 0x08], //        mov rcx, qword ptr [rbx+8]
  movzx_eax_rsi68: [0x0f, 0xb7, 0x46, 0x68], //     movzx eax, word ptr [rsi+0x68]
};

describe('findU16FieldCompare', () => {
  test('the real shape: mov r14,[rsi+10h]; movzx ecx,word [r14+68h]; cmp cx,65h', () => {
    const buf = code(I.mov_r14_rsi10, I.movzx_ecx_r14_68, I.cmp_cx_65);
    assert.deepEqual(findU16FieldCompare(buf, BASE, 'RSI', 101), [{ outerOffset: 16, innerOffset: 104, at: BASE + 9 }]);
  });

  test('a compare with another immediate finds nothing', () => {
    assert.deepEqual(offsets(code(I.mov_r14_rsi10, I.movzx_ecx_r14_68, I.cmp_cx_66)), []);
  });

  test('another argument register finds nothing', () => {
    assert.deepEqual(findU16FieldCompare(code(I.mov_r14_rsi10, I.movzx_ecx_r14_68, I.cmp_cx_65), BASE, 'RDI', 101), []);
  });

  test('a copy of the argument register is followed: mov rbp,rsi; …; mov rax,[rbp+10h]', () => {
    const buf = code(I.mov_rbp_rsi, I.push_rbx, I.sub_rsp_20, I.mov_rax_rbp10, I.movzx_eax_rax68, I.cmp_ax_65);
    assert.deepEqual(offsets(buf), [{ outerOffset: 16, innerOffset: 104 }]);
  });

  test('the argument register overwritten by a load is no longer the argument', () => {
    // rsi holds *(arg+16) after the first instruction: [rsi+8] is not a field of the argument.
    const buf = code(I.mov_rsi_rsi10, I.mov_rcx_rsi8, I.movzx_edx_rcx20, I.cmp_dx_65);
    assert.deepEqual(offsets(buf), []);
  });

  test('…but it holds the loaded field: mov rsi,[rsi+10h]; movzx eax,word [rsi+68h]; cmp ax,65h', () => {
    const buf = code(I.mov_rsi_rsi10, I.movzx_eax_rsi68, I.cmp_ax_65);
    assert.deepEqual(offsets(buf), [{ outerOffset: 16, innerOffset: 104 }]);
  });

  test('a pointer overwritten by a movzx is no longer the pointer', () => {
    // rax holds a u16 after `movzx eax, word [rax+68h]`: [rax+20h] is not a field behind the pointer.
    const buf = code(I.mov_rax_rsi10, I.movzx_eax_rax68, I.movzx_ecx_rax20, I.cmp_cx_65);
    assert.deepEqual(offsets(buf), []);
  });

  test('copying the argument keeps the source an alias too: mov rbx,rsi; mov rsi,[rsi+10h]; mov rcx,[rbx+8]', () => {
    const buf = code(I.mov_rbx_rsi, I.mov_rsi_rsi10, I.mov_rcx_rbx8, I.movzx_edx_rcx20, I.cmp_dx_65);
    assert.deepEqual(offsets(buf), [{ outerOffset: 8, innerOffset: 32 }]);
    const buf2 = code(I.mov_rbx_rsi, I.mov_rax_rsi10, I.movzx_eax_rax68, I.cmp_ax_65);
    assert.deepEqual(offsets(buf2), [{ outerOffset: 16, innerOffset: 104 }]);
  });
});

for (const app of ['demo-service', 'hyper014-server'] as const) {
  test(`${app}: hyper Server::encode compares msg.head.subject at exactly (16, 104)`, () => {
    const info = analyzeBinary(appBinary(app));
    const fns = info.functionsByName(HYPER_ENCODE);
    assert.ok(fns.length >= 1, HYPER_ENCODE);
    for (const fn of fns) {
      const found = findU16FieldCompare(info.elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr, 'RSI', 101);
      assert.deepEqual(found.map(({ outerOffset, innerOffset }) => ({ outerOffset, innerOffset })), [{ outerOffset: 16, innerOffset: 104 }], fn.mangled);
      assert.ok(found[0].at > fn.vaddr && found[0].at < fn.vaddr + fn.size);
    }
  });
}

test('findOffsetThroughPointer: tokio bind_inner reads the task id through header.vtable.id_offset', async () => {
  const { findOffsetThroughPointer } = await import('../../src/binary/patterns');
  // From tokio 1.54.1 / rustc 1.95 (reqwest11-client): mov %rsi,%rbx; mov 0x10(%rsi),%rax; mov 0x48(%rax),%rax; mov (%rsi,%rax,1),%r14; ret
  const code = Buffer.from('4889f3' + '488b4610' + '488b4048' + '4c8b3406' + 'c3', 'hex');
  assert.deepEqual(findOffsetThroughPointer(code, 0x1000, 'RSI', 16), [0x48]);
  // Through a copy of the argument, index and base swapped.
  const copy = Buffer.from('4889f3' + '488b4310' + '488b4048' + '4c8b3418' + 'c3', 'hex');
  assert.deepEqual(findOffsetThroughPointer(copy, 0x1000, 'RSI', 16), [0x48]);
  // The vtable pointer loaded from another offset: nothing.
  const other = Buffer.from('488b4618' + '488b4048' + '4c8b3406' + 'c3', 'hex');
  assert.deepEqual(findOffsetThroughPointer(other, 0x1000, 'RSI', 16), []);
  // The argument overwritten before the load: nothing.
  const clobbered = Buffer.from('488b4610' + '31f6' + '488b4048' + '4c8b3406' + 'c3', 'hex');
  assert.deepEqual(findOffsetThroughPointer(clobbered, 0x1000, 'RSI', 16), []);
});

// tokio's store of the current task id into its CONTEXT thread-local, in the
// shapes rustc 1.95 emits (bytes copied from the matrix builds of
// demo-service: `objdump -d` of the functions named). tokio/context.ts trusts
// the wider walk only to confirm the offsets database.
describe('findTlsArgStores: the shapes of tokio set_current_task_id', () => {
  const hex = (s: string) => Buffer.from(s, 'hex');
  // thin LTO, set_current_task_id at 0x141900: mov rbx,-0x130; ...; ret (TLS destroyed);
  // ...; call [GOT] (register the destructor); mov rdi,r14; ...; mov fs:[rbx+0x30],rdi
  const thin = hex('4156535048c7c3d0feffff640fb6434883f801743683f802750a31c04883c4085b415ec364488b0425000000004801d8488d35099bffff4989fe4889c7ff15cd3b01004c89f764c643480164488b43306448897b304883c4085b415ec3');
  // opt-level "z", set_current_task_id at 0xc8d23 calls the accessor at 0xc8586
  // (FnOnce::call_once: returns fs:[0] - 0x120, or 0 when destroyed), then mov [rcx+0x30],rbx
  const zSet = hex('534889fbe85af8ffff4885c0740d4889c1488b403048895930eb0231c05bc3');
  const zGetter = hex('5364488b042500000000488d80e0feffff4889c30fb6404883f801740783f802750731db4889d85bc34889dfff1500940600ebf0');
  // fat LTO + 1 CGU, <TaskIdGuard as Drop>::drop at 0xf6a30: mov fs:[-0xc0],rdi after an early ret
  const fatDrop = hex('640fb6042558ffffff83f801743683f8027501c35364488b042500000000488d8010ffffff488d355422feff4889fb4889c7e83972fdff4889df64c6042558ffffff015b6448893c2540ffffffc3');

  test('thin LTO: the offset held in a register (-0x130 + 0x30), past the early return', () => {
    assert.deepEqual(findTlsArgStores(thin, 0x141900, 'RDI', 200, undefined, true), [-0x100]);
    assert.deepEqual(findTlsArgStores(thin, 0x141900), [], 'the plain walk stops at the first return');
  });
  test('opt-level "z": the address returned by an outlined accessor (-0x120 + 0x30)', () => {
    assert.equal(tlsGetterOffset(zGetter, 0xc8586), -0x120);
    const getter = (t: number) => (t === 0xc8586 ? tlsGetterOffset(zGetter, 0xc8586) : undefined);
    assert.deepEqual(findTlsArgStores(zSet, 0xc8d23, 'RDI', 200, getter, true), [-0xf0]);
    assert.deepEqual(findTlsArgStores(zSet, 0xc8d23, 'RDI', 200, () => undefined, true), [], 'no accessor, no offset');
  });
  test('fat LTO: the guard drop stores its argument back after an early return', () => {
    assert.deepEqual(findTlsArgStores(fatDrop, 0xf6a30, 'RDI', 200, () => undefined, true), [-0xc0]);
  });
  test('a function that is not an accessor gives no getter offset', () => {
    assert.equal(tlsGetterOffset(thin, 0x141900), undefined, 'fs:[0] + rbx, no lea');
    assert.equal(tlsGetterOffset(zSet, 0xc8d23), undefined);
  });
});
